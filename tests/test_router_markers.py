"""The fast loops and processors.checked share one `UNSET` (processors.contract).

`fault` tells a processor's failure from a pair the loop could not route by whether the
loop's pair variables are still `UNSET`; a loop with a marker of its own would have every
failure raised outside the processor's frames taken for a bad pair.
"""

from __future__ import annotations

from typing import Any

from processors.pipeline import Node, Pipeline
from processors.router import Router


def needs_two(line: str, other: str) -> list[tuple[str, str]]:
    return [("end", line + other)]


def test_a_call_that_fails_before_any_pair_is_the_processors_error() -> None:
    wrong: Any = needs_two  # a processor that cannot take a line alone
    router = Router(Pipeline({"start": Node("start", "needs_two", wrong, 0, "tests")}))
    assert router.is_literal("start")
    routed = router.route(["a", "b"], "app.log", 1)
    assert routed.out == []
    assert [e.line_no for e in routed.errors] == [1, 2]
    for error in routed.errors:
        assert error.message.startswith("TypeError: needs_two() missing 1 required positional")
    assert [d.line_no for d in routed.deadletters] == [1, 2]
