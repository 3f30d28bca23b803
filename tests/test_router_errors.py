"""Router faults (SPEC §4) as a table: unknown tags, retries, what a processor returns."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from router_table_fixtures import (
    INFO,
    L1,
    L2,
    Case,
    E,
    S,
    run_case,
    to_info,
)

# -- processors ------------------------------------------------------------------------


def to_nowhere(line: str) -> Iterator[tuple[str, str]]:
    yield "nowhere", line + "?"


def always_fails(line: str) -> Iterator[tuple[str, str]]:
    raise ValueError(f"bad {line}")


def as_list(line: str) -> list[tuple[str, str]]:
    return [("end", line.upper())]


class Shout:
    def __call__(self, line: str) -> list[tuple[str, str]]:
        return [("end", line + "!!")]


def not_a_pair(line: str) -> Iterator[Any]:
    yield "end"


def three_tuple(line: str) -> Iterator[Any]:
    yield "end", line, "extra"


def int_tag(line: str) -> Iterator[Any]:
    yield 5, line


def good_then_bad(line: str) -> Iterator[Any]:
    yield "end", line
    yield "oops"


def flaky_factory() -> Callable[[str], Iterator[tuple[str, str]]]:
    """Fails the first attempt of every line, then succeeds."""
    seen: set[str] = set()

    def flaky(line: str) -> Iterator[tuple[str, str]]:
        if line not in seen:
            seen.add(line)
            raise RuntimeError(f"flaky {line}")
        yield "end", line

    return flaky


def half_gen_factory() -> Callable[[str], Iterator[tuple[str, str]]]:
    """Yields a pair, then raises on its first attempt per line; whole on the second."""
    seen: set[str] = set()

    def half_gen(line: str) -> Iterator[tuple[str, str]]:
        yield "end", line + "-first"
        if line not in seen:
            seen.add(line)
            raise OSError(f"half {line}")
        yield "end", line + "-second"

    return half_gen


def broken_gen(line: str) -> Iterator[tuple[str, str]]:
    yield "end", line
    raise KeyError("tag")


# -- the table ---------------------------------------------------------------------------

CASES = {
    "unknown tag": Case(
        spec=lambda: {S: to_nowhere},
        lines=["lost"],
        out=[],
        stats={"to_nowhere": (1, 1, 0)},
        traces=[(L1, [S])],
        errors=[("to_nowhere", None, L1, "lost?")],
        deadletters=[("nowhere", "to_nowhere", L1, "lost?")],
    ),
    "retry then success": Case(
        spec=lambda: {S: to_info, INFO: (flaky_factory(), 2)},
        lines=["p", "q"],
        out=["p", "q"],
        stats={"to_info": (2, 0, 0), "flaky": (2, 2, 2)},
        traces=[(L1, [S, INFO, "retry", E]), (L2, [S, INFO, "retry", E])],
        errors=[
            ("flaky", "RuntimeError: flaky p", L1, "p"),
            ("flaky", "RuntimeError: flaky q", L2, "q"),
        ],
    ),
    "failure without retries": Case(
        spec=lambda: {S: to_info, INFO: always_fails},
        lines=["z"],
        out=[],
        stats={"to_info": (1, 0, 0), "always_fails": (1, 1, 0)},
        traces=[(L1, [S, INFO])],
        errors=[("always_fails", "ValueError: bad z", L1, "z")],
        deadletters=[(INFO, "always_fails", L1, "z")],
    ),
    "retry exhausted": Case(
        spec=lambda: {S: to_info, INFO: (always_fails, 2)},
        lines=["z", "w"],
        out=[],
        stats={"to_info": (2, 0, 0), "always_fails": (2, 6, 4)},
        traces=[(L1, [S, INFO, "retry", "retry"]), (L2, [S, INFO, "retry", "retry"])],
        errors=[("always_fails", "ValueError: bad z", L1, "z")] * 3
        + [("always_fails", "ValueError: bad w", L2, "w")] * 3,
        deadletters=[(INFO, "always_fails", L1, "z"), (INFO, "always_fails", L2, "w")],
    ),
    "generator yields then raises, retried": Case(
        spec=lambda: {S: (half_gen_factory(), 1)},
        lines=["g"],
        out=["g-first", "g-second"],
        stats={"half_gen": (1, 1, 1)},
        traces=[(L1, [S, "retry", E]), (L1, [S, "retry", E])],
        errors=[("half_gen", "OSError: half g", L1, "g")],
    ),
    "generator yields then raises, exhausted": Case(
        spec=lambda: {S: (broken_gen, 1)},
        lines=["g"],
        out=[],
        stats={"broken_gen": (1, 2, 1)},
        traces=[(L1, [S, "retry"])],
        errors=[("broken_gen", "KeyError: 'tag'", L1, "g")] * 2,
        deadletters=[(S, "broken_gen", L1, "g")],
    ),
    "processor returning a list": Case(
        spec=lambda: {S: to_info, INFO: as_list},
        lines=["low"],
        out=["LOW"],
        stats={"to_info": (1, 0, 0), "as_list": (1, 0, 0)},
        traces=[(L1, [S, INFO, E])],
    ),
    "callable object": Case(
        spec=lambda: {S: Shout()},
        lines=["hey"],
        out=["hey!!"],
        stats={"Shout": (1, 0, 0)},
        traces=[(L1, [S, E])],
    ),
    "malformed: not a pair": Case(
        spec=lambda: {S: not_a_pair},
        lines=["m"],
        out=[],
        stats={"not_a_pair": (1, 1, 0)},
        traces=[(L1, [S])],
        errors=[
            (
                "not_a_pair",
                "TypeError: not_a_pair yielded str, expected (tag, line) pairs of str",
                L1,
                "m",
            )
        ],
        deadletters=[(S, "not_a_pair", L1, "m")],
    ),
    "malformed: three-tuple": Case(
        spec=lambda: {S: three_tuple},
        lines=["m"],
        out=[],
        stats={"three_tuple": (1, 1, 0)},
        traces=[(L1, [S])],
        errors=[
            (
                "three_tuple",
                "TypeError: three_tuple yielded tuple (str, str, str), "
                "expected (tag, line) pairs of str",
                L1,
                "m",
            )
        ],
        deadletters=[(S, "three_tuple", L1, "m")],
    ),
    "malformed: tag not a str": Case(
        spec=lambda: {S: int_tag},
        lines=["m"],
        out=[],
        stats={"int_tag": (1, 1, 0)},
        traces=[(L1, [S])],
        errors=[
            (
                "int_tag",
                "TypeError: int_tag yielded tuple (int, str), expected (tag, line) pairs of str",
                L1,
                "m",
            )
        ],
        deadletters=[(S, "int_tag", L1, "m")],
    ),
    "malformed: a bad pair fails the whole call": Case(
        spec=lambda: {S: to_info, INFO: good_then_bad},
        lines=["k", "l"],
        out=[],
        stats={"to_info": (2, 0, 0), "good_then_bad": (2, 2, 0)},
        traces=[(L1, [S, INFO]), (L2, [S, INFO])],
        errors=[("good_then_bad", None, L1, "k"), ("good_then_bad", None, L2, "l")],
        deadletters=[(INFO, "good_then_bad", L1, "k"), (INFO, "good_then_bad", L2, "l")],
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_route_table_traced(case: Case) -> None:
    run_case(case, traced=True)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_route_table_untraced(case: Case) -> None:
    run_case(case, traced=False)
