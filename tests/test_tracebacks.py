"""A failing processor's traceback in /errors: the frames are formatted once per failure
site and reused (formatting them costs some 200 µs), and every text still reads as the
standard library prints it."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from processors import batch as batch_module
from processors.batch import FRAMES_CACHE_MAX, format_traceback
from processors.pipeline import Node, Pipeline, processor_name
from processors.router import Router

S = "start"


class Loud(Exception):
    """An exception of a module other than builtins: its name is printed qualified."""


class Mute(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


def fails_in_two_places(line: str) -> Iterator[tuple[str, str]]:
    if line == "first":
        raise Loud("at the first raise")
    try:
        raise KeyError(line)
    except KeyError:
        raise ValueError("at the second raise, during another") from None


def fails_oddly(line: str) -> Iterator[tuple[str, str]]:
    if line == "mute":
        raise Mute()
    if line == "empty":
        raise ValueError()
    if line == "syntax":
        compile("x = (", "user.py", "exec")
    if line == "notes":
        exc = ValueError("with a note")
        exc.add_note("a note of the user")
        raise exc
    try:
        raise OSError(2, "gone")
    except OSError:
        raise RuntimeError("during an OSError")  # noqa: B904  (a __context__ chain)


def stdlib_traceback(exc: BaseException) -> str:
    """What the standard library prints for `exc`, without its context chain."""
    head = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
    tail = "".join(traceback.format_exception_only(type(exc), exc))
    return "Traceback (most recent call last):\n" + head + tail


@pytest.mark.parametrize(
    ("fn", "lines"),
    [
        (fails_in_two_places, ["first", "second", "first", "second"]),
        (fails_oddly, ["mute", "empty", "syntax", "notes", "chain", "mute", "chain"]),
    ],
)
def test_tracebacks_read_as_the_standard_library_prints_them(
    fn: Callable[[str], Any], lines: list[str]
) -> None:
    """Frames are formatted once per failure site and reused: each text is still exact."""
    for line in lines:
        try:
            for _ in fn(line):
                pass
        except Exception as exc:
            assert format_traceback(exc, frozenset()) == stdlib_traceback(exc)
        else:
            raise AssertionError(f"{line!r} did not fail")
    node = Node(S, processor_name(fn), fn, 0, f"tests:{S}")
    routed = Router(Pipeline({S: node}), trace=True).route(lines)
    assert [e.line for e in routed.errors] == lines
    assert [d.line for d in routed.deadletters] == lines
    for e in routed.errors:
        assert e.traceback is not None
        assert e.traceback.startswith("Traceback (most recent call last):\n")
        assert e.message.split(":")[0] in e.traceback


def test_the_cache_of_formatted_frames_stays_bounded() -> None:
    for i in range(FRAMES_CACHE_MAX + 50):
        code = compile(f"def f{i}(line):\n    raise ValueError(line)\n", f"user{i}.py", "exec")
        scope: dict[str, Any] = {}
        exec(code, scope)
        try:
            scope[f"f{i}"](str(i))
        except ValueError as exc:
            text = format_traceback(exc, frozenset())
            assert text.endswith(f"ValueError: {i}\n") and f"user{i}.py" in text
    assert 0 < len(batch_module._frames_text) <= FRAMES_CACHE_MAX
