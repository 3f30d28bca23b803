"""`[sinks.NAME]` tables: where lines go besides the outbox.

A processor sends a line to a sink by emitting the sink's name as its tag. Parsed and
validated with the rest of the config, before any thread starts; a mistake is a
ConfigError of one line naming the file, the sink and the key.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from store.errors import ConfigError

SINK_TYPES = ("file", "sqlite", "http", "stdout")
RESERVED = frozenset({"start", "end"})
_KEYS: dict[str, tuple[str, ...]] = {
    "file": ("type", "path"),
    "sqlite": ("type", "path", "table"),
    "http": ("type", "url", "batch", "timeout", "headers", "max_pending"),
    "stdout": ("type",),
}
_FIELDS = ("file", "tag")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """One sink as configured; the keys that do not apply to its type keep defaults."""

    name: str
    type: str
    path: str = ""  # file: template relative to the outbox; sqlite: relative to state
    table: str = ""
    url: str = ""
    batch: int = 500
    timeout: float = 5.0
    max_pending: int = 100_000
    headers: tuple[tuple[str, str], ...] = field(default=())

    def describe(self, outbox: str, state_dir: str) -> str:
        """One line saying where the sink's lines go."""
        if self.type == "file":
            return f"file sink {outbox}/{self.path} (exactly-once)"
        if self.type == "sqlite":
            return f"sqlite sink {state_dir}/{self.path} table {self.table} (exactly-once)"
        if self.type == "http":
            url = shown_url(self.url)
            return f"http sink POST {url}, {self.batch} lines a batch (at-least-once)"
        return "stdout"


def shown_url(url: str) -> str:
    """`url` without what may be a secret: a password in it, the query's values."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = "&".join(f"{kv.partition('=')[0]}=***" for kv in parts.query.split("&") if kv)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def parse_sinks(value: Any, where: str) -> tuple[SinkSpec, ...]:
    """The `[sinks]` table as specs, in the order written."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: sinks: expected [sinks.NAME] tables")
    return tuple(_parse_sink(name, table, f"{where}: [sinks.{name}]")
                 for name, table in value.items())  # fmt: skip


def render_path(template: str, file: str, tag: str) -> str:
    """The outbox path of a file sink's line from input path `file`."""
    return template.replace("{file}", file).replace("{tag}", tag)


def _parse_sink(name: str, table: Any, where: str) -> SinkSpec:
    if not _NAME.match(name) or name in RESERVED:
        raise ConfigError(
            f"{where}: a sink name must be letters, digits, '_', '.' or '-' and not "
            f"'start' or 'end', got {name!r}"
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    kind = table.get("type")
    if kind not in SINK_TYPES:
        raise ConfigError(f"{where} type: expected one of {', '.join(SINK_TYPES)}, got {kind!r}")
    unknown = sorted(set(table) - set(_KEYS[kind]))
    if unknown:
        raise ConfigError(
            f"{where} {unknown[0]}: unknown key for a {kind} sink "
            f"(allowed: {', '.join(_KEYS[kind])})"
        )
    if kind == "file":
        return SinkSpec(name, kind, path=_file_template(table.get("path"), where))
    if kind == "sqlite":
        path = _relative(table.get("path", f"{name}.db"), f"{where} path")
        parts = PurePosixPath(path).parts
        if parts[0] in ("logs", "inflight") or parts[0].startswith("inboxd."):
            raise ConfigError(f"{where} path: {path!r} is inboxd's own; name another file")
        table_name = table.get("table", "lines")
        if not isinstance(table_name, str) or not _TABLE.match(table_name):
            raise ConfigError(f"{where} table: expected an SQL name like lines, got {table_name!r}")
        if table_name.startswith(("sqlite_", "inboxd_")):
            raise ConfigError(f"{where} table: {table_name!r} is a reserved name")
        return SinkSpec(name, kind, path=path, table=table_name)
    if kind == "http":
        return _http(name, table, where)
    return SinkSpec(name, kind)


def _http(name: str, table: Mapping[str, Any], where: str) -> SinkSpec:
    url = table.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"{where} url: expected an http:// or https:// URL, got {url!r}")
    if not urlsplit(url).hostname:
        raise ConfigError(f"{where} url: no host in {url!r}")
    batch = _int(table.get("batch", 500), f"{where} batch", 1, 100_000)
    max_pending = _int(table.get("max_pending", 100_000), f"{where} max_pending", 1, 10**9)
    timeout = table.get("timeout", 5)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or not 0 < timeout <= 600
    ):
        raise ConfigError(f"{where} timeout: expected seconds in (0, 600], got {timeout!r}")
    headers = table.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and "\n" not in k + v for k, v in headers.items()
    ):
        raise ConfigError(f"{where} headers: expected a table of strings, got {headers!r}")
    return SinkSpec(
        name,
        "http",
        url=url,
        batch=batch,
        timeout=float(timeout),
        max_pending=max(max_pending, batch),
        headers=tuple(headers.items()),
    )


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where}: expected an integer from {low} to {high}, got {value!r}")
    return value


def _file_template(value: Any, where: str) -> str:
    template = _relative(value, f"{where} path")
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"{where} path: {exc} (write {{file}} or {{tag}})") from None
    for _, name, spec, conv in fields:
        if name is not None and (name not in _FIELDS or spec or conv):
            raise ConfigError(
                f"{where} path: unknown placeholder {{{name}}} (use {{file}} or {{tag}})"
            )
    if "{file}" not in template and template.endswith("/"):
        raise ConfigError(f"{where} path: names a folder; end it with a file name or {{file}}")
    if PurePosixPath(template).parts[0].startswith(".inboxd"):
        raise ConfigError(f"{where} path: names starting with .inboxd are inboxd's own")
    return template


def _relative(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a relative path string, got {value!r}")
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or "\0" in value:
        raise ConfigError(f"{where}: must stay inside its folder (no '/' start, no '..')")
    return value
