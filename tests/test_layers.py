"""The layers import one way (DESIGN): daemon -> web/, watcher/ -> processors/ -> sinks/ ->
store/. A subpackage belongs to its top-level package's layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# What each layer may not import (at module level or inside functions alike).
FORBIDDEN = {
    "store": ("sinks", "processors", "watcher", "web", "daemon"),
    "sinks": ("processors", "watcher", "web", "daemon"),
    "processors": ("watcher", "web", "daemon"),
}


def imported_modules(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(), str(source))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize("layer", FORBIDDEN)
def test_lower_layers_never_import_upper_ones(layer: str) -> None:
    wrong = {
        f"{path.relative_to(REPO)}: {name}"
        for path in sorted((REPO / layer).rglob("*.py"))
        for name in imported_modules(path)
        if name.partition(".")[0] in FORBIDDEN[layer]
    }
    assert not wrong, f"{layer}/ imports an upper layer: {sorted(wrong)}"


def test_the_root_exceptions_live_at_the_bottom() -> None:
    from processors import errors as reexport
    from store import errors

    assert reexport.InboxdError is errors.InboxdError
    assert reexport.ConfigError is errors.ConfigError
    assert issubclass(errors.ConfigError, errors.InboxdError)


def test_sink_types_are_looked_up_in_the_registry_only() -> None:
    """No `x.type == "http"` outside sinks/: a sink type is one module and its spec."""
    from sinks.registry import SINK_TYPES

    wrong = []
    for path in sorted(REPO.rglob("*.py")):
        rel = path.relative_to(REPO)
        if rel.parts[0] in ("sinks", "tests", ".venv", "bench", "build"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute):
                consts = [c for c in node.comparators if isinstance(c, ast.Constant | ast.Tuple)]
                values = {
                    v.value
                    for c in consts
                    for v in (c.elts if isinstance(c, ast.Tuple) else [c])
                    if isinstance(v, ast.Constant)
                }
                if node.left.attr == "type" and values & set(SINK_TYPES):
                    wrong.append(f"{rel}:{node.lineno}")
    assert not wrong, f"sink types compared outside sinks/: {wrong}"
