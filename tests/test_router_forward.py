"""A wave of the built-in `keep` is forwarded without calling it: everything the router
gives (outbox lines, dead letters, errors, figures, traces) equals what the same graph
gives with a copy of `keep` that the loops call, for a generated corpus."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from builtin_fixtures import random_line
from router_fixtures import traces_of

from processors import builtin
from processors.pipeline import Pipeline, load_pipeline
from processors.router import Routed, Router


def keep_copy(line: str) -> tuple[tuple[str, str], ...]:
    """The built-in's body in another function object: the loops call this one."""
    return ((builtin.KEEP_TAG, line),)


def with_copies(pipeline: Pipeline) -> Pipeline:
    nodes = {
        tag: dataclasses.replace(node, fn=keep_copy) if node.fn is builtin.keep else node
        for tag, node in pipeline.nodes.items()
    }
    assert nodes != dict(pipeline.nodes)
    return Pipeline(nodes)


def seen(routed: Routed, trace: bool) -> dict[str, Any]:
    """What a batch gives, without timestamps and times."""
    return {
        "out": routed.out,
        "dead": [d._replace(ts=0) for d in routed.deadletters],
        "errors": [e._replace(ts=0) for e in routed.errors],
        "stats": {k: (v[0], v[2], v[3]) for k, v in routed.stats.items()},
        "traces": traces_of(routed) if trace else None,
    }


GRAPHS = {
    "default": None,  # keep at info and warn, a later wave
    "keep first": {
        "start": "processors.builtin:keep",
        "redact": "processors.builtin:redact_secrets",
    },
}


@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("trace", [False, True])
@pytest.mark.parametrize("max_hops", [64, 2, 1])  # at the limit, keep's pairs are stopped
def test_forwarding_keep_gives_what_calling_it_gives(
    graph: str, trace: bool, max_hops: int
) -> None:
    rnd = random.Random(7)
    lines = [random_line(rnd) for _ in range(3000)]
    lines += ["2026-12-01 INFO plain", "WARN w", "ERROR e", "DEBUG d", "", "token=abc"]
    pipeline = load_pipeline(GRAPHS[graph], where=graph)
    got, want = (
        seen(Router(p, trace=trace, max_hops=max_hops).route(lines, "a.log", 5), trace)
        for p in (pipeline, with_copies(pipeline))
    )
    assert got == want
    assert got["out"] or max_hops < 3
