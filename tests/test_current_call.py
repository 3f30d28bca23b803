"""The line processors.current reports while each of the router's loops calls a processor.

current_call reads the loops' locals (processors.contract) from another thread; here the
processor itself asks it about its own thread, so each loop is checked in one call, with
no thread and no timing. Each case also names the loop it means to run, so that a change
of which loop runs a processor cannot pass unnoticed.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest
from router_fixtures import build

from processors.contract import calls_processor
from processors.current import current_call
from processors.pipeline import processor_name
from processors.router import Router

FILE = "app/web.log"
FIRST_LINE_NO = 100
LINES = ["alpha", "beta", "gamma"]
# (processor, file, line_no, the functions on the stack) per call, in call order.
SEEN: list[tuple[str | None, str | None, int | None, set[str]]] = []


def look() -> None:
    """Record what current_call says about this thread, and which functions are running."""
    found = current_call(threading.get_ident())
    frames: set[str] = set()
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        frames.add(frame.f_code.co_name)
        frame = frame.f_back
    if found is None:
        SEEN.append((None, None, None, frames))
    else:
        SEEN.append((found.processor, found.file, found.line_no, frames))


# -- processors: `literal` ones run in the proven loops, the others in run_checked ----


def to_look(line: str) -> Iterator[tuple[str, str]]:
    yield "look", line


def look_literal(line: str) -> Iterator[tuple[str, str]]:
    look()
    yield "end", line


def look_checked(line: str) -> Iterator[tuple[str, str]]:
    look()
    yield from [("end", line)]  # delegating: not proven


TRIED: set[str] = set()


def look_on_retry(line: str) -> list[tuple[str, str]]:
    if line not in TRIED:
        TRIED.add(line)
        raise RuntimeError("first attempt fails")
    look()
    return [("end", line)]


class Sub(str):
    """A str subclass: the proven loops stop at it and finish the call checked."""


def look_after_sub(line: str) -> Iterator[tuple[str, str]]:
    yield "end", Sub(line)
    look()
    yield "end", line


Case = tuple[dict[str, Any], bool, Callable[..., Any], str]
CASES: dict[str, Case] = {
    # name: (pipeline, trace, the processor current_call should name, the loop that runs it)
    "start_plain": ({"start": look_literal}, False, look_literal, "start_plain"),
    "start_traced": ({"start": look_literal}, True, look_literal, "start_traced"),
    "run_plain": ({"start": to_look, "look": look_literal}, False, look_literal, "run_plain"),
    "run_traced": ({"start": to_look, "look": look_literal}, True, look_literal, "run_traced"),
    "run_checked first wave": ({"start": look_checked}, False, look_checked, "run_checked"),
    "run_checked later wave": (
        {"start": to_look, "look": look_checked}, True, look_checked, "run_checked"
    ),
    "retry (Recovery.call)": ({"start": (look_on_retry, 1)}, False, look_on_retry, "call"),
    "rest of a call (Recovery._continue)": (
        {"start": look_after_sub}, False, look_after_sub, "_continue"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_current_call_reports_the_line_each_loop_is_on(case: str) -> None:
    spec, trace, fn, loop = CASES[case]
    SEEN.clear()
    TRIED.clear()
    router = Router(build(spec), trace=trace)
    routed = router.route(list(LINES), FILE, FIRST_LINE_NO)
    name = processor_name(fn)
    assert [s[:3] for s in SEEN] == [(name, FILE, FIRST_LINE_NO + i) for i in range(len(LINES))], (
        f"current_call while {loop} runs {name}"
    )
    assert all(loop in s[3] for s in SEEN), f"{name} did not run in {loop}"
    assert len(routed.out) >= len(LINES)


def test_the_cases_run_the_loops_they_name() -> None:
    """The literal processors are proven (fast loops), the checked one is not."""
    router = Router(build({"start": look_literal, "a": look_checked, "b": look_after_sub}))
    assert router.is_literal("start") and router.is_literal("b")
    assert not router.is_literal("a")


def test_a_loop_without_the_locals_is_refused_at_import() -> None:
    def renamed(node: Any, batch: Any, items: list[Any]) -> None:
        for origin in items:
            node.fn(origin)

    with pytest.raises(TypeError, match="renamed calls a processor without"):
        calls_processor(renamed)

    def kept(node: Any, batch: Any, items: list[Any]) -> None:
        for item in items:
            node.fn(item)

    assert calls_processor(kept) is kept
