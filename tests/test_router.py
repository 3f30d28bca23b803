"""Router semantics (SPEC §3, §4) as tables: outbox lines, stats, traces, errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from router_fixtures import build, publish, traces_of

from processors.pipeline import DEFAULT_PIPELINE, Node, Pipeline, load_pipeline
from processors.router import Routed, Router

FILE = "app/web.log"
FIRST_LINE_NO = 10
MESSAGE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*: \S")


def route(
    spec: dict[str, Any], lines: list[str], *, trace: bool = True, max_hops: int = 64
) -> Routed:
    return Router(build(spec), trace=trace, max_hops=max_hops).route(lines, FILE, FIRST_LINE_NO)


# -- processors ------------------------------------------------------------------------


def to_info(line: str) -> Iterator[tuple[str, str]]:
    yield "info", line


def to_end(line: str) -> Iterator[tuple[str, str]]:
    yield "end", line


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


def level_split(line: str) -> Iterator[tuple[str, str]]:
    if line.startswith("skip"):
        return
    yield ("debug" if line.startswith("debug") else "info"), line


def swallow(line: str) -> Iterator[tuple[str, str]]:
    return iter(())


def go_a(line: str) -> Iterator[tuple[str, str]]:
    yield "a", line


def go_b(line: str) -> Iterator[tuple[str, str]]:
    yield "b", line


def back_to_a(line: str) -> Iterator[tuple[str, str]]:
    yield "a", line


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


def check(routed: Routed, case: Case, names: list[str], *, traced: bool) -> None:
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


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_route_table_traced(case: Case) -> None:
    spec = case.spec()
    routed = route(spec, case.lines, trace=True, max_hops=case.max_hops)
    check(routed, case, build(spec).names, traced=True)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_route_table_untraced(case: Case) -> None:
    spec = case.spec()
    routed = route(spec, case.lines, trace=False, max_hops=case.max_hops)
    check(routed, case, build(spec).names, traced=False)


# -- non-str lines -------------------------------------------------------------------------


# -- hop limit boundaries -------------------------------------------------------------------


def chain(length: int) -> dict[str, Any]:
    """start -> h1 -> ... -> h{length-1} -> end: a line passes exactly `length` processors."""
    spec: dict[str, Any] = {}
    tags = [S] + [f"h{i}" for i in range(1, length)]
    for i, tag in enumerate(tags):
        nxt = tags[i + 1] if i + 1 < length else E

        def hop(line: str, _nxt: str = nxt) -> Iterator[tuple[str, str]]:
            yield _nxt, line

        hop.__name__ = f"p_{tag}"
        spec[tag] = hop
    return spec


@pytest.mark.parametrize("max_hops", [1, 2, 5, 64])
def test_line_passing_exactly_max_hops_processors_is_delivered(max_hops: int) -> None:
    routed = route(chain(max_hops), ["ok"], max_hops=max_hops)
    assert routed.out == ["ok"]
    assert routed.errors == [] and routed.deadletters == []
    assert traces_of(routed) == [(L1, [S] + [f"h{i}" for i in range(1, max_hops)] + [E])]


@pytest.mark.parametrize("max_hops", [1, 2, 5, 64])
def test_line_passing_one_more_processor_is_stopped_on_the_last_emitter(max_hops: int) -> None:
    spec = chain(max_hops + 1)
    routed = route(spec, ["far"], max_hops=max_hops)
    assert routed.out == []
    last = S if max_hops == 1 else f"h{max_hops - 1}"
    emitter = f"p_{last}"
    stats = publish(routed).stats()
    assert {n: s["errors"] for n, s in stats.items() if s["errors"]} == {emitter: 1}
    assert stats[f"p_h{max_hops}"]["count"] == 0
    assert [(d.tag, d.processor, d.line) for d in routed.deadletters] == [
        (f"h{max_hops}", emitter, "far")
    ]
    assert [(e.processor, e.line_no) for e in routed.errors] == [(emitter, L1)]
    assert traces_of(routed) == [(L1, [S] + [f"h{i}" for i in range(1, max_hops)])]


def test_default_max_hops_is_64() -> None:
    router = Router(build(chain(65)))
    assert router.route(["far"]).out == []
    assert Router(build(chain(64))).route(["ok"]).out == ["ok"]


# -- input order, batching, line numbers -------------------------------------------------


def delay_odd(line: str) -> Iterator[tuple[str, str]]:
    yield ("slow" if int(line) % 2 else "end"), line


def slow1(line: str) -> Iterator[tuple[str, str]]:
    yield "slow2", line


def slow2(line: str) -> Iterator[tuple[str, str]]:
    yield "end", line


def test_outbox_lines_keep_input_order_whatever_path_length() -> None:
    lines = [str(i) for i in range(50)]
    routed = route({S: delay_odd, "slow": slow1, "slow2": slow2}, lines)
    assert routed.out == lines
    paths = dict(traces_of(routed))
    assert paths[FIRST_LINE_NO] == [S, E]
    assert paths[FIRST_LINE_NO + 1] == [S, "slow", "slow2", E]


def test_empty_batch_routes_nothing() -> None:
    routed = route({S: to_end}, [])
    assert routed.out == [] and routed.errors == [] and routed.deadletters == []
    assert publish(routed).stats() == {
        "to_end": {"count": 0, "time": 0.0, "errors": 0, "retries": 0}
    }


def test_processor_names_come_from_the_config_name() -> None:
    pipeline = Pipeline({S: Node(S, "renamed", to_end, 0, "tests:to_end")})
    routed = Router(pipeline).route(["x"])
    assert set(publish(routed).stats()) == {"renamed"}


def test_same_callable_at_two_tags_counts_under_one_name() -> None:
    routed = route({S: level_split, INFO: swallow, "debug": swallow}, ["a", "debug b", "c"])
    stats = publish(routed).stats()
    assert stats["swallow"]["count"] == 3


# -- the default pipeline --------------------------------------------------------------------

DEFAULT_INPUT = [
    "2026-11-27T12:00:00Z ERROR db timeout password=hunter2",
    "2026-11-27T12:00:01Z WARN disk 91% full",
    "2026-11-27T12:00:02Z INFO user bob logged in token: abc123",
    "2026-11-27T12:00:03Z DEBUG cache miss",
    "no level at all",
    "",
    '{"level": "error", "msg": "payment failed", "api_key": "K-42"}',
    '{"level": "debug", "msg": "tick"}',
    '{"msg": "no level", "Authorization": "Bearer abcdef123456"}',
    "2026-11-27T12:00:04Z CRITICAL out of memory",
]

DEFAULT_OUTPUT = [
    "2026-11-27T12:00:00Z ERROR db timeout password=***",
    "2026-11-27T12:00:01Z WARN disk 91% full",
    "2026-11-27T12:00:02Z INFO user bob logged in token: ***",
    "no level at all",
    '{"level": "error", "msg": "payment failed", "api_key": "***"}',
    '{"msg": "no level", "Authorization": "Bearer ***"}',
    "2026-11-27T12:00:04Z CRITICAL out of memory",
]

# error: 3 (ERROR, json error, CRITICAL); warn: 1; info: 3 (INFO, no level, json no level);
# debug: 2; blank: dropped at start.
DEFAULT_STATS = {
    "tag_router": (10, 0, 0),
    "filter_errors": (3, 0, 0),
    "keep": (4, 0, 0),
    "drop": (2, 0, 0),
    "redact_secrets": (7, 0, 0),
}


@pytest.mark.parametrize("trace", [True, False], ids=["traced", "untraced"])
def test_default_pipeline_exact_metrics(trace: bool) -> None:
    pipeline = load_pipeline(None, where="default pipeline")
    assert pipeline.names == list(DEFAULT_STATS)
    routed = Router(pipeline, trace=trace).route(DEFAULT_INPUT, FILE, 1)
    assert routed.out == DEFAULT_OUTPUT
    stats = publish(routed).stats()
    assert {n: (s["count"], s["errors"], s["retries"]) for n, s in stats.items()} == DEFAULT_STATS
    assert all(stats[n]["time"] > 0 for n in stats)
    assert routed.errors == [] and routed.deadletters == []
    if trace:
        paths = dict(traces_of(routed))
        assert paths == {
            1: [S, "error", "redact", E],
            2: [S, "warn", "redact", E],
            3: [S, INFO, "redact", E],
            4: [S, "debug"],
            5: [S, INFO, "redact", E],
            6: [S],
            7: [S, "error", "redact", E],
            8: [S, "debug"],
            9: [S, INFO, "redact", E],
            10: [S, "error", "redact", E],
        }
    else:
        assert traces_of(routed) == []


def test_default_pipeline_table_is_the_documented_one() -> None:
    assert DEFAULT_PIPELINE["start"] == "processors.builtin:tag_router"
    assert DEFAULT_PIPELINE["error"] == {
        "processor": "processors.builtin:filter_errors",
        "retries": 2,
    }
    assert "end" not in DEFAULT_PIPELINE
