"""Router semantics beside the tables: hop limits, input order, names, the default pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from router_fixtures import build, publish, traces_of
from router_table_fixtures import (
    FILE,
    FIRST_LINE_NO,
    INFO,
    L1,
    E,
    S,
    level_split,
    route,
    swallow,
    to_end,
)

from processors.pipeline import DEFAULT_PIPELINE, Node, Pipeline, load_pipeline
from processors.router import Router

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
