"""Checked output in the router (SPEC §3, §4): bad shapes, max_outputs, retries, records.

Each bad shape, on the fast path (literal processors) and the checked path alike, fails
the call like an exception: one error per attempt with its attempt number, retries
apply, and the line is dead-lettered once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import repeat
from typing import Any, NamedTuple

import pytest

from processors.pipeline import Node, Pipeline, processor_name
from processors.router import Router
from processors.shape import is_literal

S, E = "start", "end"


def router(
    spec: dict[str, Any], *, max_outputs: int = 10_000, keep_lines: str = "redacted"
) -> Router:
    nodes = {}
    for tag, entry in spec.items():
        fn, retries = entry if isinstance(entry, tuple) else (entry, 0)
        nodes[tag] = Node(tag, processor_name(fn), fn, retries, f"tests:{tag}")
    return Router(Pipeline(nodes), trace=True, max_outputs=max_outputs, keep_lines=keep_lines)


# -- bad shapes --------------------------------------------------------------------------


def returns_str(line: str) -> Any:
    return "end" + line


def returns_empty_str(line: str) -> Any:
    return ""


def returns_bytes(line: str) -> Any:
    return line.encode()


def returns_none(line: str) -> Any:
    return None


def returns_dict(line: str) -> Any:
    return {"end": line}


def returns_int(line: str) -> Any:
    return 7


def yields_str(line: str) -> Iterator[Any]:
    yield line


def yields_list_pair(line: str) -> Iterator[Any]:
    yield ["end", line]


def yields_bytes_line(line: str) -> Iterator[Any]:
    yield "end", line.encode()


def yields_none_line(line: str) -> Iterator[Any]:
    yield "end", None


def yields_bytes_tag(line: str) -> Iterator[Any]:
    yield b"end", line


def yields_three(line: str) -> Iterator[Any]:
    yield "end", line, "x"


def list_of_str(line: str) -> Any:
    return [line]


def tuple_not_wrapped(line: str) -> Any:
    return ("end", line)


def good_then_int(line: str) -> Iterator[Any]:
    yield from (("end", line), 42)


BAD_SHAPES: dict[str, tuple[Callable[[str], Any], str]] = {
    "str result": (returns_str, "returns_str returned str"),
    "empty str result": (returns_empty_str, "returns_empty_str returned str"),
    "bytes result": (returns_bytes, "returns_bytes returned bytes"),
    "None result": (returns_none, "returns_none returned NoneType"),
    "dict result": (returns_dict, "returns_dict returned dict"),
    "int result": (returns_int, "returns_int returned int"),
    "str item": (yields_str, "yields_str yielded str"),
    "list item": (yields_list_pair, "yields_list_pair yielded list"),
    "bytes line": (yields_bytes_line, "yields_bytes_line yielded tuple (str, bytes)"),
    "None line": (yields_none_line, "yields_none_line yielded tuple (str, NoneType)"),
    "bytes tag": (yields_bytes_tag, "yields_bytes_tag yielded tuple (bytes, str)"),
    "three-tuple": (yields_three, "yields_three yielded tuple (str, str, str)"),
    "list of str": (list_of_str, "list_of_str yielded str"),
    "a bare pair": (tuple_not_wrapped, "tuple_not_wrapped yielded str"),
    "good pair then int": (good_then_int, "good_then_int yielded int"),
}


@pytest.mark.parametrize("retries", [0, 2])
@pytest.mark.parametrize("shape", BAD_SHAPES.values(), ids=BAD_SHAPES.keys())
def test_bad_output_fails_the_call_once_per_attempt(
    shape: tuple[Callable[[str], Any], str], retries: int
) -> None:
    fn, message = shape
    routed = router({S: (fn, retries)}).route(["secret line", "other"], "f.log", 1)
    assert routed.out == []
    for line_no in (1, 2):
        errors = [e for e in routed.errors if e.line_no == line_no]
        assert [e.attempt for e in errors] == list(range(1, retries + 2))
        assert all(e.message.startswith(f"TypeError: {message}, expected") for e in errors)
        assert all(e.traceback is None for e in errors)
    assert [(d.line_no, d.tag, d.processor) for d in routed.deadletters] == [
        (1, S, fn.__name__),
        (2, S, fn.__name__),
    ]
    assert routed.stats[fn.__name__] == [2, routed.stats[fn.__name__][1], 2 * (retries + 1),
                                         2 * retries]  # fmt: skip
    assert routed.traces is not None
    paths = sorted(tuple(r.path) for r in routed.traces.records())
    assert paths == [(S, *["retry"] * retries)] * 2


def infinite(line: str) -> Iterator[tuple[str, str]]:
    while True:
        yield "end", line


def test_runaway_generator_stops_at_max_outputs_plus_one() -> None:
    pulled = 0

    def counting(line: str) -> Iterator[tuple[str, str]]:
        nonlocal pulled
        while True:
            pulled += 1
            yield "end", line

    routed = router({S: (counting, 1)}, max_outputs=50).route(["x"])
    assert pulled == 2 * 51
    assert routed.out == []
    assert [(e.attempt, e.message) for e in routed.errors] == [
        (n, "OverflowError: counting yielded more than 50 pairs (max_outputs)") for n in (1, 2)
    ]
    assert len(routed.deadletters) == 1


def test_exactly_max_outputs_pairs_pass() -> None:
    def fifty(line: str) -> list[tuple[str, str]]:
        return [("end", f"{line}{i}") for i in range(50)]

    routed = router({S: fifty}, max_outputs=50).route(["x"])
    assert len(routed.out) == 50 and routed.errors == []
    assert router({S: fifty}, max_outputs=49).route(["x"]).out == []


def c_iterator(line: str) -> Any:
    return zip(repeat("end"), map(str, map(int, line.split())))


def test_c_level_iterator_raising_is_retried() -> None:
    routed = router({S: (c_iterator, 2)}).route(["1 2", "3 x"])
    assert routed.out == ["1", "2"]
    assert [(e.line_no, e.attempt) for e in routed.errors] == [(2, 1), (2, 2), (2, 3)]
    assert all(e.message.startswith("ValueError: invalid literal for int()") for e in routed.errors)
    assert all(e.traceback and "ValueError" in e.traceback for e in routed.errors)
    assert [d.line_no for d in routed.deadletters] == [2]
    assert routed.stats["c_iterator"][2:] == [3, 2]


def flaky_factory() -> Callable[[str], Iterator[tuple[str, str]]]:
    calls: dict[str, int] = {}

    def flaky(line: str) -> Iterator[tuple[str, str]]:
        calls[line] = calls.get(line, 0) + 1
        if calls[line] < 3:
            raise RuntimeError(f"attempt {calls[line]} on {line}")
        yield "end", line

    return flaky


def test_retried_line_has_one_record_per_attempt_with_its_traceback() -> None:
    routed = router({S: (flaky_factory(), 3)}).route(["a"], "f.log", 7)
    assert routed.out == ["a"]
    assert [(e.attempt, e.message) for e in routed.errors] == [
        (1, "RuntimeError: attempt 1 on a"),
        (2, "RuntimeError: attempt 2 on a"),
    ]
    for e in routed.errors:
        assert e.traceback is not None and len(e.traceback) <= 2000
        assert e.traceback.startswith("Traceback (most recent call last):")
        assert "in flaky" in e.traceback and "raise RuntimeError" in e.traceback
        assert "processors/" not in e.traceback  # inboxd's own frames are left out
        assert e.as_dict()["attempt"] == e.attempt


def deep(line: str, depth: int = 60) -> Iterator[tuple[str, str]]:
    if depth:
        yield from deep(line, depth - 1)
    raise ValueError("bottom")


def test_traceback_keeps_the_innermost_frames_within_2000_characters() -> None:
    (error,) = router({S: deep}).route(["x"]).errors
    assert error.traceback is not None
    assert len(error.traceback) <= 2000
    assert error.traceback.endswith("ValueError: bottom\n")


def unknown_and_good(line: str) -> Iterator[tuple[str, str]]:
    yield "nowhere", line
    yield "end", line


def test_unknown_tag_stops_only_that_branch_and_is_not_retried() -> None:
    routed = router({S: (unknown_and_good, 2)}).route(["u"])
    assert routed.out == ["u"]
    assert [(e.attempt, e.message) for e in routed.errors] == [
        (1, "UnknownTag: no processor for tag 'nowhere'")
    ]
    assert [(d.tag, d.line) for d in routed.deadletters] == [("nowhere", "u")]


# -- secrets in records --------------------------------------------------------------------

SECRET_LINE = "login password=hunter2 token=abc123 Authorization: Bearer xyz0123456789"


def leaks(line: str) -> Iterator[tuple[str, str]]:
    raise ValueError(f"cannot parse {line}")


@pytest.mark.parametrize("keep_lines", ["redacted", "full", "none"])
def test_keep_lines_applies_to_every_record(keep_lines: str) -> None:
    r = router({S: leaks}, keep_lines=keep_lines)
    routed = r.route([SECRET_LINE], "f.log", 1)
    (error,) = routed.errors
    (letter,) = routed.deadletters
    assert routed.traces is not None
    (trace,) = routed.traces.records()
    texts = [error.message, error.traceback or "", letter.message]
    stored = [error.line, letter.line, trace.line]
    secrets = ("hunter2", "abc123", "xyz0123456789")
    if keep_lines == "full":
        assert stored == [SECRET_LINE] * 3
        assert all(s in error.message for s in secrets)
        return
    for text in [*texts, *(s for s in stored if s)]:
        assert not any(s in text for s in secrets), text
    if keep_lines == "redacted":
        assert error.line == letter.line == trace.line
        assert error.line is not None and "password=***" in error.line
    else:
        assert (error.line, letter.line, trace.line) == (None, "", None)
        assert "login password" not in error.message


# -- what the code proves ------------------------------------------------------------------


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
