"""The layers import one way (DESIGN): daemon -> web/, watcher/ -> processors/ -> store/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# What each layer may not import (at module level or inside functions alike).
FORBIDDEN = {
    "store": ("processors", "watcher", "web", "daemon"),
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
        f"{path.name}: {name}"
        for path in sorted((REPO / layer).glob("*.py"))
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
