"""Which processors take the router's fast loops, and that both loops route alike (SPEC §3).

A processor whose code proves it yields literal (tag, line) pairs skips the output checks;
anything that only poses as such a processor, or a line posing as a str, is checked, and
sys.exit inside a processor is an error of its line on either loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
from router_checks_fixtures import (
    S,
    good_then_int,
    list_of_str,
    returns_none,
    returns_str,
    router,
    yields_str,
)

from processors.router import Router
from processors.shape import is_literal

# -- what the code proves ------------------------------------------------------------------


def infinite(line: str) -> Iterator[tuple[str, str]]:
    while True:
        yield "end", line


def literal_gen(line: str) -> Iterator[tuple[str, str]]:
    if line:
        yield "a", line
    yield "b", line.upper()


def literal_fn(line: str) -> Any:
    if not line:
        return ()
    return (("end", line),)


def conditional_item(line: str) -> Iterator[Any]:
    yield ("end", line) if line else line


def delegating(line: str) -> Iterator[tuple[str, str]]:
    yield from literal_gen(line)


class Callable_:
    def __call__(self, line: str) -> list[tuple[str, str]]:
        return [("end", line)]


@pytest.mark.parametrize(
    ("fn", "literal"),
    [
        (literal_gen, True),
        (literal_fn, True),
        (infinite, False),
        (conditional_item, False),
        (delegating, False),
        (good_then_int, False),
        (returns_str, False),
        (returns_none, False),
        (list_of_str, False),
        (yields_str, False),
        (Callable_(), False),
    ],
    ids=lambda v: v if isinstance(v, bool) else getattr(v, "__name__", type(v).__name__),
)
def test_only_code_that_proves_literal_pairs_takes_the_fast_loop(
    fn: Callable[[str], Any], literal: bool
) -> None:
    assert is_literal(fn, 10_000) is literal


def test_a_literal_generator_with_more_yields_than_max_outputs_is_checked() -> None:
    assert is_literal(literal_gen, 2) and not is_literal(literal_gen, 1)
    routed = router({S: literal_gen, "a": literal_fn, "b": literal_fn}, max_outputs=1).route(["x"])
    assert routed.out == [] and [e.message.split(":")[0] for e in routed.errors] == [
        "OverflowError"
    ]


def test_fast_and_checked_paths_route_alike() -> None:
    def checked(line: str) -> Any:
        return list(literal_gen(line))

    lines = ["", "x", "y"]
    fast = router({S: literal_gen, "a": literal_fn, "b": literal_fn})
    slow = router({S: checked, "a": literal_fn, "b": literal_fn})
    assert fast.is_literal(S) and not slow.is_literal(S)
    a, b = fast.route(lines), slow.route(lines)
    assert a.out == b.out == ["x", "X", "y", "Y"]
    assert a.errors == b.errors == []
    assert a.traces is not None and b.traces is not None
    assert [r.path for r in a.traces.records()] == [r.path for r in b.traces.records()]


class Shout(str):
    pass


class Sticky:
    """Survives `+ ""` and compares equal to anything: still not a str."""

    def __add__(self, other: object) -> Sticky:
        return self

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash("end")


def yields_subclass(line: str) -> Iterator[tuple[str, str]]:
    yield "end", Shout(line)


def yields_sticky_line(line: str) -> Iterator[Any]:
    yield "end", Sticky()


def yields_user_string(line: str) -> Iterator[Any]:
    from collections import UserString

    yield "end", UserString(line)


def test_a_str_subclass_line_is_routed_as_a_plain_str() -> None:
    routed = router({S: yields_subclass}).route(["a", "b"])
    assert routed.out == ["a", "b"] and all(type(x) is str for x in routed.out)
    assert routed.errors == []


@pytest.mark.parametrize("fn", [yields_sticky_line, yields_user_string])
def test_lines_posing_as_str_are_rejected(fn: Callable[[str], Any]) -> None:
    assert is_literal(fn, 10)
    routed = router({S: fn}).route(["a"])
    assert routed.out == []
    assert [e.message.split(" yielded ")[0] for e in routed.errors] == [f"TypeError: {fn.__name__}"]


def exits(line: str) -> Iterator[tuple[str, str]]:
    if line == "quit":
        raise SystemExit(3)
    yield "end", line


def exits_checked(line: str) -> list[tuple[str, str]]:
    return list(exits(line))


@pytest.mark.parametrize("fn", [exits, exits_checked])
def test_sys_exit_in_a_processor_is_an_error_of_that_line(fn: Callable[[str], Any]) -> None:
    routed = router({S: (fn, 1)}).route(["a", "quit", "b"])
    assert routed.out == ["a", "b"]
    assert [(e.line_no, e.attempt, e.message) for e in routed.errors] == [
        (2, 1, "SystemExit: 3"),
        (2, 2, "SystemExit: 3"),
    ]
    assert [d.line_no for d in routed.deadletters] == [2]


class Pair(NamedTuple):
    tag: str
    line: str


def yields_named_pairs(line: str) -> Iterator[Any]:
    for tag in ("end", "nowhere", "end"):
        yield Pair(tag, line + tag)


def test_tuple_subclass_pairs_and_unknown_tags_on_the_checked_path() -> None:
    r = router({S: (yields_named_pairs, 2)})
    assert not r.is_literal(S)
    routed = r.route(["a"])
    assert routed.out == ["aend", "aend"]
    assert [(e.attempt, e.message) for e in routed.errors] == [
        (1, "UnknownTag: no processor for tag 'nowhere'")
    ]
    assert [(d.tag, d.line) for d in routed.deadletters] == [("nowhere", "anowhere")]


def test_the_default_pipeline_runs_in_the_fast_loops() -> None:
    from processors.pipeline import load_pipeline

    r = Router(load_pipeline(None))
    assert {tag: r.is_literal(tag) for tag in r.pipeline.nodes} == dict.fromkeys(
        r.pipeline.nodes, True
    )
