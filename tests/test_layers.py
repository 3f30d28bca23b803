"""The packages import one way, and no module imports itself back through others.

The arrows, top to bottom (each part may import what its arrows reach, directly or
through the parts below them, and nothing else of the project):

    daemon.py -> web/, watcher/
    web/ -> cli/
    watcher/ (engine, observer, stall watch) -> watcher/workers/ -> watcher/reading/ -> cli/
    cli/ (settings, config tables, check, test, tap) -> processors/ -> sinks/ -> store/
    store/ (SQLite: checkpoints, history, flush) -> store/live/ (in-memory state)
    store/live/ -> store's shared records (records, errors, paths, file globs)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("watcher", "processors", "store", "web", "sinks", "cli")
RECORDS = ("store.records", "store.errors", "store.paths", "store.filematch")
ARROWS: dict[str, tuple[str, ...]] = {
    "daemon": ("web", "watcher"),
    "web": ("cli",),
    "watcher": ("watcher.workers",),
    "watcher.workers": ("watcher.reading",),
    "watcher.reading": ("cli",),
    "cli": ("processors",),
    "processors": ("sinks",),
    "sinks": ("store",),
    "store": ("store.live",),
    "store.live": ("store.records",),
    "store.records": (),
}


def part_of(module: str) -> str:
    """The part of the layering a module belongs to (the most specific one named)."""
    if module in ("daemon", "__init__"):
        return "daemon"
    if module in RECORDS:
        return "store.records"
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in ARROWS:
            return ".".join(parts[:n])
    raise AssertionError(f"{module} belongs to no part of the layering")


def reachable(part: str) -> set[str]:
    seen: set[str] = set()
    todo = [part]
    while todo:
        for nxt in ARROWS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def own_modules() -> dict[str, Path]:
    found = {"daemon": REPO / "daemon.py", "__init__": REPO / "__init__.py"}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imported_modules(source: Path, known: dict[str, Path]) -> set[str]:
    """The project's modules `source` imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in known or name.partition(".")[0] in PACKAGES}


def import_graph() -> dict[str, set[str]]:
    known = own_modules()
    graph = {}
    for name, path in known.items():
        graph[name] = {m for m in imported_modules(path, known) if m in known} - {name}
    # A package's __init__ is what `from pkg import mod` runs first: it adds no edge.
    return {n: {m for m in deps if known[m].name != "__init__.py"} for n, deps in graph.items()}


@pytest.mark.parametrize("part", sorted(ARROWS))
def test_each_part_imports_only_what_its_arrows_reach(part: str) -> None:
    allowed = reachable(part) | {part}
    wrong = sorted(
        f"{name} imports {dep}"
        for name, deps in import_graph().items()
        if part_of(name) == part
        for dep in deps
        if part_of(dep) not in allowed
    )
    assert not wrong, f"arrows the layering does not have: {wrong}"


def test_no_module_imports_itself_back() -> None:
    """No import cycle between modules, counting imports inside functions too."""
    graph = import_graph()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_live_state_touches_no_sqlite() -> None:
    """store/live/ is what the threads share in memory; SQLite is store/'s own."""
    wrong = []
    for path in sorted((REPO / "store" / "live").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            wrong += [
                f"{path.name}: {n}" for n in names if n.startswith(("sqlite3", "sqlite_utils"))
            ]
    assert not wrong, wrong


def test_every_module_belongs_to_a_part() -> None:
    for name in own_modules():
        part_of(name)


def test_the_layering_itself_has_no_cycle() -> None:
    for part in ARROWS:
        assert part not in reachable(part), part


def test_no_module_is_over_400_lines() -> None:
    """A module past 400 lines is two modules: in the product, the tests and the benchmarks."""
    walked = own_modules() | {
        f"{folder}.{path.stem}": path
        for folder in ("tests", "bench")
        for path in sorted((REPO / folder).glob("*.py"))
    }
    assert {"tests.test_layers", "bench.harness"} <= set(walked)  # the walk sees both folders
    long = {
        name: n for name, path in walked.items() if (n := len(path.read_text().splitlines())) > 400
    }
    assert not long, long


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
