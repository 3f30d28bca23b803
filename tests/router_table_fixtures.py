"""The router's table tests: the Case record, how a case is routed and checked, shared processors.

Each table module (paths, errors) holds its own cases; routing and checking them is one
code here so both tables are read the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from router_fixtures import build, publish, traces_of

from processors.router import Routed, Router

FILE = "app/web.log"
FIRST_LINE_NO = 10
MESSAGE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*: \S")


def route(
    spec: dict[str, Any], lines: list[str], *, trace: bool = True, max_hops: int = 64
) -> Routed:
    """Route `lines` through the `{tag: fn}` spec as lines FIRST_LINE_NO... of FILE."""
    return Router(build(spec), trace=trace, max_hops=max_hops).route(lines, FILE, FIRST_LINE_NO)


# -- processors shared by the tables and the router's other tests ----------------------


def to_info(line: str) -> Iterator[tuple[str, str]]:
    yield "info", line


def to_end(line: str) -> Iterator[tuple[str, str]]:
    yield "end", line


def level_split(line: str) -> Iterator[tuple[str, str]]:
    if line.startswith("skip"):
        return
    yield ("debug" if line.startswith("debug") else "info"), line


def swallow(line: str) -> Iterator[tuple[str, str]]:
    return iter(())


# -- the table ---------------------------------------------------------------------------


@dataclass
class Case:
    spec: Callable[[], dict[str, Any]]
    lines: list[str]
    out: list[str]
    # processor -> (count, errors, retries)
    stats: dict[str, tuple[int, int, int]]
    # (line_no, path) per terminated branch
    traces: list[tuple[int, list[str]]]
    # (processor, message or None for "any well-formed message", line_no, line)
    errors: Sequence[tuple[str, str | None, int, str]] = field(default_factory=list)
    # (tag, processor, line_no, line)
    deadletters: list[tuple[str, str, int, str]] = field(default_factory=list)
    max_hops: int = 64


S, INFO, E = "start", "info", "end"
L1, L2, L3 = FIRST_LINE_NO, FIRST_LINE_NO + 1, FIRST_LINE_NO + 2


def check(routed: Routed, case: Case, names: list[str], *, traced: bool) -> None:
    """Assert a routed batch matches its case: outbox, stats, errors, dead letters, traces."""
    assert routed.out == case.out
    telemetry = publish(routed)
    stats = telemetry.stats()
    assert set(stats) == set(names)
    for name in names:
        count, n_errors, retries = case.stats.get(name, (0, 0, 0))
        got = stats[name]
        assert set(got) == {"count", "time", "errors", "retries"}
        assert (got["count"], got["errors"], got["retries"]) == (count, n_errors, retries), name
        assert isinstance(got["time"], float)
        assert (got["time"] > 0) == (count > 0), name

    errors = [e.as_dict() for e in telemetry.error_records()]
    assert len(errors) == len(case.errors)
    got_errors = sorted((e["processor"], e["line_no"], e["line"], e["message"]) for e in errors)
    want = sorted(case.errors, key=lambda e: (e[0], e[2], e[3]))
    for (processor, line_no, line, message), (w_proc, w_msg, w_no, w_line) in zip(
        got_errors, want, strict=True
    ):
        assert (processor, line_no, line) == (w_proc, w_no, w_line)
        assert MESSAGE.match(message), message
        if w_msg is not None:
            assert message == w_msg
    for e in errors:
        assert e["file"] == FILE

    letters = sorted((d.tag, d.processor, d.line_no, d.line) for d in routed.deadletters)
    assert letters == sorted(case.deadletters)
    for d in routed.deadletters:
        assert d.file == FILE
        assert MESSAGE.match(d.message), d.message
    assert telemetry.counters()["deadletters"] == len(case.deadletters)

    if traced:
        assert traces_of(routed) == sorted(case.traces)
    else:
        assert traces_of(routed) == []


def run_case(case: Case, *, traced: bool) -> None:
    """Route a table case with tracing on or off and check everything it names."""
    spec = case.spec()
    routed = route(spec, case.lines, trace=traced, max_hops=case.max_hops)
    check(routed, case, build(spec).names, traced=traced)
