"""processors.batch.Batch records into the two lists it is given, no Routed needed."""

from __future__ import annotations

from processors.batch import Batch, Keeper
from processors.pipeline import Node
from store.records import DeadLetter, ErrorRecord


def upper(line: str) -> list[tuple[str, str]]:
    return [("end", line.upper())]


def test_fail_and_dead_append_to_the_lists_handed_in() -> None:
    errors: list[ErrorRecord] = []
    deadletters: list[DeadLetter] = []
    batch = Batch(
        ["a", "b"], "app.log", 10, 5.0, errors, deadletters, False, Keeper("full"), frozenset()
    )
    node = Node("start", "upper", upper, 0, "tests")
    batch.fail(node, 1, ValueError("bad b"), "b", 2, tb=False)
    assert [(e.processor, e.message, e.file, e.line_no, e.line, e.attempt) for e in errors] == [
        ("upper", "ValueError: bad b", "app.log", 11, "b", 2)
    ]
    assert deadletters == []
    batch.dead(node, 0, KeyError("x"), "a", "start")
    assert len(errors) == 1
    assert [(d.file, d.line_no, d.tag, d.processor, d.line) for d in deadletters] == [
        ("app.log", 10, "start", "upper", "a")
    ]
