"""No module under tests/ imports from a test module: shared helpers live in *_fixtures.py.

Importing a test module from another runs its module-level code (skips, fixtures, marks)
in the importer and ties the two files' tests together; a fixtures module holds no tests.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def is_test_module(dotted: str) -> bool:
    """Whether a dotted module name names a test module (`test_x` or `tests.test_x`)."""
    return dotted.split(".")[-1].startswith("test_")


def imported_test_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) of every import of a test module, at any depth of the tree."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if is_test_module(alias.name):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if is_test_module(source):
                yield node.lineno, source
            # `from tests import test_x` and `from . import test_x` import the module itself
            for alias in node.names:
                if is_test_module(alias.name) and not is_test_module(source):
                    yield node.lineno, ".".join(filter(None, [source, alias.name]))


def test_no_module_imports_from_a_test_module() -> None:
    found = [
        f"{path.name}:{line}: imports {module}"
        for path in sorted(TESTS.glob("*.py"))
        for line, module in imported_test_modules(ast.parse(path.read_text(), str(path)))
    ]
    assert len(list(TESTS.glob("test_*.py"))) > 50  # the walk sees the real tests
    assert found == [], "move the shared helpers into a tests/*_fixtures.py module"
