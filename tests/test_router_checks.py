"""Checked output in the router (SPEC §3, §4): bad shapes, max_outputs, retries, records.

Each bad shape, on the fast path (literal processors) and the checked path alike, fails
the call like an exception: one error per attempt with its attempt number, retries
apply, and the line is dead-lettered once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import repeat
from typing import Any

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

# -- bad shapes --------------------------------------------------------------------------


def returns_empty_str(line: str) -> Any:
    return ""


def returns_bytes(line: str) -> Any:
    return line.encode()


def returns_dict(line: str) -> Any:
    return {"end": line}


def returns_int(line: str) -> Any:
    return 7


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


def tuple_not_wrapped(line: str) -> Any:
    return ("end", line)


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
