"""Reading what the router gave the way the daemon reads it: through a Telemetry.

Shared by the router's table tests and the forwarding test, so both compare traces in
the same form.
"""

from __future__ import annotations

from typing import Any

from processors.pipeline import Node, Pipeline, processor_name
from processors.router import Routed
from store.live.telemetry import Telemetry


def publish(routed: Routed) -> Telemetry:
    """Add one routed batch to a Telemetry the way watcher/engine.py `_route` does."""
    telemetry = Telemetry(trace_enabled=True, trace_size=100_000, errors_size=100_000)
    telemetry.add_stats(routed.stats)
    telemetry.add_errors(routed.errors)
    if routed.traces:
        telemetry.add_traces(routed.traces)
    telemetry.note_deadletters(routed.deadletters)
    return telemetry


def traces_of(routed: Routed) -> list[tuple[int | None, list[str]]]:
    """(line_no, path) of every terminated branch, sorted: the one place traces are read."""
    records = publish(routed).trace_records()
    return sorted((r.as_dict()["line_no"], r.as_dict()["path"]) for r in records)


def build(spec: dict[str, Any]) -> Pipeline:
    """`{tag: fn}` or `{tag: (fn, retries)}` into a Pipeline, names from the callables."""
    nodes = {}
    for tag, entry in spec.items():
        fn, retries = entry if isinstance(entry, tuple) else (entry, 0)
        nodes[tag] = Node(tag, processor_name(fn), fn, retries, f"tests:{tag}")
    return Pipeline(nodes)
