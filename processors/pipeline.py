"""The processor interface and the loading of a `[pipeline]` table into a graph.

A processor is any callable `f(line: str) -> Iterable[tuple[str, str]]`. The graph maps
each tag to exactly one processor; `start` must exist and `end` is reserved for the
outbox.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from processors.usercode import (
    OWN_PACKAGES,
    add_user_dir,
    find_user_source,
    forget_helpers,
    import_user_module,
    user_dirs,
)
from store.errors import ConfigError

Processor = Callable[[str], Iterable[tuple[str, str]]]

START = "start"
END = "end"
SPEC_KEYS = frozenset({"processor", "retries", "options", "name"})

DEFAULT_PIPELINE: dict[str, Any] = {
    "start": "processors.builtin:tag_router",
    "error": {"processor": "processors.builtin:filter_errors", "retries": 2},
    "warn": "processors.builtin:keep",
    "info": "processors.builtin:keep",
    "debug": "processors.builtin:drop",
    "redact": "processors.builtin:redact_secrets",
}


@dataclass(frozen=True, slots=True)
class Node:
    """One processor at one tag."""

    tag: str
    name: str
    fn: Processor
    retries: int
    target: str


@dataclass(frozen=True, slots=True)
class Pipeline:
    nodes: Mapping[str, Node]

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(n.name for n in self.nodes.values()))


def processor_name(fn: object) -> str:
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__


def import_target(
    target: str,
    where: str,
    *,
    reloaded: set[str] | None = None,
    folders: list[Path] | None = None,
) -> Any:
    """Resolve `"package.module:attr"` (dotted attrs allowed after the colon).

    A module whose top level sits in one of `folders` (default: the config's folder) is
    loaded from there by path under a private name; any other is imported as usual.
    With `reloaded` (a SIGHUP reload), a user module imported before is imported again,
    once per reload, so that edited processor code takes effect; inboxd's own modules are
    left alone.
    """
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ConfigError(f"{where}: expected 'module:callable', got {target!r}")
    source = find_user_source(module_name, user_dirs() if folders is None else folders)
    try:
        obj: Any
        if source is not None:
            obj = import_user_module(module_name, source, fresh=reloaded)
        else:
            if _should_reload(module_name, reloaded):
                assert reloaded is not None
                reloaded.add(module_name)
                importlib.reload(sys.modules[module_name])
            obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import module {module_name!r}: {exc}") from None
    except SyntaxError as exc:
        raise ConfigError(f"{where}: {syntax_error_text(exc, module_name)}") from None
    except Exception as exc:
        raise ConfigError(f"{where}: importing {module_name!r} failed: {exc!r}") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{where}: module {module_name!r} has no {attr_path!r}") from None
    return obj


def syntax_error_text(exc: SyntaxError, module_name: str) -> str:
    """`file:line: message`, as a compiler says it (IndentationError included)."""
    where = exc.filename or module_name
    if exc.lineno is not None:
        where = f"{where}:{exc.lineno}"
    return f"{where}: {exc.msg}"


def _should_reload(module_name: str, reloaded: set[str] | None) -> bool:
    return (
        reloaded is not None
        and module_name not in reloaded
        and module_name in sys.modules
        and module_name.partition(".")[0] not in OWN_PACKAGES
    )


def _build_node(
    tag: str, spec: Any, where: str, reloaded: set[str] | None, folders: list[Path] | None
) -> Node:
    here = f"{where}: [pipeline] {tag}"
    if isinstance(spec, str):
        spec = {"processor": spec}
    if not isinstance(spec, dict):
        raise ConfigError(f"{here}: expected 'module:callable' or a table, got {spec!r}")
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise ConfigError(
            f"{here}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(SPEC_KEYS))})"
        )
    target = spec.get("processor")
    if not isinstance(target, str):
        raise ConfigError(f"{here}: 'processor' must be a 'module:callable' string")
    retries = spec.get("retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"{here}: retries: expected an integer >= 0, got {retries!r}")
    name = spec.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigError(f"{here}: name: expected a non-empty string, got {name!r}")
    obj = import_target(target, here, reloaded=reloaded, folders=folders)
    if "options" in spec:
        options = spec["options"]
        if not isinstance(options, dict):
            raise ConfigError(f"{here}: options: expected a table, got {options!r}")
        if not callable(obj):
            raise ConfigError(f"{here}: {target!r} is not callable")
        try:
            obj = obj(**options)
        except Exception as exc:
            raise ConfigError(
                f"{here}: {target}(**options) failed: {type(exc).__name__}: {exc}"
            ) from None
    if not callable(obj):
        raise ConfigError(f"{here}: {target!r} is not callable")
    return Node(tag, name or processor_name(obj), obj, retries, target)


def load_pipeline(
    table: Mapping[str, Any] | None,
    *,
    where: str = "config",
    reload: bool = False,
    folders: list[Path] | None = None,
    sinks: Iterable[str] = (),
) -> Pipeline:
    """Build the graph from a `[pipeline]` table; the embedded default when it is empty.

    `reload` imports the user's processor modules (and the siblings they import) again
    (SIGHUP). `folders` are where user modules are looked for first (default: the
    config's folder, see add_import_path).
    """
    reloaded: set[str] | None = set() if reload else None
    if reload:
        forget_helpers(user_dirs() if folders is None else folders)
    spec = dict(table) if table else dict(DEFAULT_PIPELINE)
    if END in spec:
        raise ConfigError(f"{where}: [pipeline] end: 'end' is reserved for the outbox")
    if START not in spec:
        raise ConfigError(f"{where}: [pipeline]: no 'start' processor")
    for name in sinks:
        if name in spec:
            raise ConfigError(
                f"{where}: [sinks.{name}]: the name {name!r} is also a tag of [pipeline];"
                " rename the sink or the tag"
            )
    nodes: dict[str, Node] = {}
    for tag, entry in spec.items():
        if not tag:
            raise ConfigError(f"{where}: [pipeline]: empty tag")
        nodes[tag] = _build_node(tag, entry, where, reloaded, folders)
    return Pipeline(nodes)


def add_import_path(config_path: Path | None) -> None:
    """Let a config import modules that sit beside it (first) or in the current folder.

    Both folders go to the end of `sys.path`: a user module never hides one of inboxd's
    own packages; the config's own modules are loaded from its folder by path anyway.
    """
    if config_path is not None:
        add_user_dir(config_path.parent)
    if str(Path.cwd()) not in sys.path:
        sys.path.append(str(Path.cwd()))
