"""Router paths (SPEC §3) as a table: linear, fan-out, fan-in, drop, a cycle stopped by max_hops."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from router_table_fixtures import (
    INFO,
    L1,
    L2,
    L3,
    Case,
    E,
    S,
    level_split,
    run_case,
    swallow,
    to_end,
    to_info,
)

# -- processors ------------------------------------------------------------------------


def finish(line: str) -> Iterator[tuple[str, str]]:
    yield "end", line


def split(line: str) -> Iterator[tuple[str, str]]:
    yield "a", line
    yield "b", line.upper()


def upper_end(line: str) -> Iterator[tuple[str, str]]:
    yield "end", line + "!"


def twice_to_end(line: str) -> Iterator[tuple[str, str]]:
    yield "end", line
    yield "end", line + "#2"


def twice_to_dup(line: str) -> Iterator[tuple[str, str]]:
    yield "dup", line + "-1"
    yield "dup", line + "-2"


def by_first_char(line: str) -> Iterator[tuple[str, str]]:
    yield ("a" if line.startswith("a") else "b"), line


def via_a(line: str) -> Iterator[tuple[str, str]]:
    yield "merge", "A:" + line


def via_b(line: str) -> Iterator[tuple[str, str]]:
    yield "merge", "B:" + line


def merge(line: str) -> Iterator[tuple[str, str]]:
    yield "end", line


def go_a(line: str) -> Iterator[tuple[str, str]]:
    yield "a", line


def go_b(line: str) -> Iterator[tuple[str, str]]:
    yield "b", line


def back_to_a(line: str) -> Iterator[tuple[str, str]]:
    yield "a", line


# -- the table ---------------------------------------------------------------------------

CASES = {
    "linear": Case(
        spec=lambda: {S: to_info, INFO: to_end},
        lines=["one", "two", "three"],
        out=["one", "two", "three"],
        stats={"to_info": (3, 0, 0), "to_end": (3, 0, 0)},
        traces=[(L1, [S, INFO, E]), (L2, [S, INFO, E]), (L3, [S, INFO, E])],
    ),
    "fan-out to two tags": Case(
        spec=lambda: {S: split, "a": finish, "b": upper_end},
        lines=["x", "y"],
        out=["x", "X!", "y", "Y!"],
        stats={"split": (2, 0, 0), "finish": (2, 0, 0), "upper_end": (2, 0, 0)},
        traces=[(L1, [S, "a", E]), (L1, [S, "b", E]), (L2, [S, "a", E]), (L2, [S, "b", E])],
    ),
    "fan-out two pairs to end": Case(
        spec=lambda: {S: twice_to_end},
        lines=["x", "y"],
        out=["x", "x#2", "y", "y#2"],
        stats={"twice_to_end": (2, 0, 0)},
        traces=[(L1, [S, E]), (L1, [S, E]), (L2, [S, E]), (L2, [S, E])],
    ),
    "fan-out two pairs to the same tag": Case(
        spec=lambda: {S: twice_to_dup, "dup": finish},
        lines=["x", "y"],
        out=["x-1", "x-2", "y-1", "y-2"],
        stats={"twice_to_dup": (2, 0, 0), "finish": (4, 0, 0)},
        traces=[(L1, [S, "dup", E])] * 2 + [(L2, [S, "dup", E])] * 2,
    ),
    "fan-in": Case(
        spec=lambda: {S: by_first_char, "a": via_a, "b": via_b, "merge": merge},
        lines=["apple", "banana", "avocado"],
        out=["A:apple", "B:banana", "A:avocado"],
        stats={
            "by_first_char": (3, 0, 0),
            "via_a": (2, 0, 0),
            "via_b": (1, 0, 0),
            "merge": (3, 0, 0),
        },
        traces=[
            (L1, [S, "a", "merge", E]),
            (L2, [S, "b", "merge", E]),
            (L3, [S, "a", "merge", E]),
        ],
    ),
    "drop": Case(
        spec=lambda: {S: level_split, INFO: to_end, "debug": swallow},
        lines=["debug noise", "keep me", "skip me"],
        out=["keep me"],
        stats={"level_split": (3, 0, 0), "to_end": (1, 0, 0), "swallow": (1, 0, 0)},
        traces=[(L1, [S, "debug"]), (L2, [S, INFO, E]), (L3, [S])],
    ),
    "cycle stopped by max_hops": Case(
        spec=lambda: {S: go_a, "a": go_b, "b": back_to_a},
        lines=["loop"],
        max_hops=3,
        out=[],
        stats={"go_a": (1, 0, 0), "go_b": (1, 0, 0), "back_to_a": (1, 1, 0)},
        traces=[(L1, [S, "a", "b"])],
        errors=[("back_to_a", None, L1, "loop")],
        deadletters=[("a", "back_to_a", L1, "loop")],
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_route_table_traced(case: Case) -> None:
    run_case(case, traced=True)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_route_table_untraced(case: Case) -> None:
    run_case(case, traced=False)
