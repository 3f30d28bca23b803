"""What the fast loops hand processors.checked: one `UNSET`, and a `Stop` per fault.

`fault` tells a processor's failure from a pair the loop could not route by whether the
loop's pair variables are still `UNSET`; a loop with a marker of its own would have every
failure raised outside the processor's frames taken for a bad pair.
"""

from __future__ import annotations

from typing import Any

from processors.batch import Batch, Keeper
from processors.checked import Recovery
from processors.fastpath import Stop
from processors.pipeline import START, Node, Pipeline
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


# -- Recovery.fault takes where the loop stopped as one Stop --------------------------


def to_nowhere(line: str) -> list[tuple[str, str]]:
    return [("nowhere", line)]


def stopped_at(exc: BaseException, *, in_processor: bool) -> Stop:
    """The Stop a proven loop hands over for line "a" after its pair ("nowhere", "a")."""

    def processor_raises() -> None:
        raise exc

    try:
        if in_processor:
            processor_raises()
        raise exc
    except KeyError as caught:
        exc = caught
    node = Node("start", "to_nowhere", to_nowhere, 0, "tests")
    batch = Batch(["a"], "app.log", 7, 0.0, [], [], False, Keeper("full"), frozenset())
    res = to_nowhere("a")
    return Stop(node, (0, "a", START, None), exc, res, "nowhere", "a", {"end": []}, batch)


def test_a_stop_at_the_loops_own_lookup_is_a_branch_with_no_processor() -> None:
    stop = stopped_at(KeyError("nowhere"), in_processor=False)
    recovery = Recovery({"start": stop.node}, max_hops=64, max_outputs=10)
    assert recovery.fault(stop) == (1, 0)
    assert [e.message for e in stop.batch.errors] == ["UnknownTag: no processor for tag 'nowhere'"]
    assert [(d.line_no, d.tag) for d in stop.batch.deadletters] == [(7, "nowhere")]


def test_a_stop_raised_in_the_processor_is_its_error() -> None:
    stop = stopped_at(KeyError("inside"), in_processor=True)
    recovery = Recovery({"start": stop.node}, max_hops=64, max_outputs=10)
    assert recovery.fault(stop) == (1, 0)
    assert [e.message for e in stop.batch.errors] == ["KeyError: 'inside'"]
    assert [(d.line_no, d.tag) for d in stop.batch.deadletters] == [(7, "start")]
