"""Figures: the series a live part exposes, before any exposition format.

Each part that has figures (Telemetry, SinkBoard, HealthBoard) has one `collect()`
yielding them from one snapshot of its own; web/metrics.py turns them into Prometheus
metric families at each scrape and knows nothing of the parts. Labels are per
processor, per /health check or per configured sink only, never per file or line, to
keep series cardinality bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from store.records import FileStatus

COUNTER, GAUGE = "counter", "gauge"

# Per-processor counters: (metric name, key in a /stats entry, help).
PROCESSOR_METRICS = (
    ("inboxd_processor_lines_total", "count", "Lines handed to the processor."),
    ("inboxd_processor_seconds_total", "time", "Seconds spent inside the processor."),
    (
        "inboxd_processor_errors_total",
        "errors",
        "Failed attempts of the processor: exceptions, bad output, and the unknown tags and "
        "hop-limit stops it caused.",
    ),
    ("inboxd_processor_retries_total", "retries", "Attempts after the first."),
)

# Engine-wide counters: (metric name, key in Telemetry.counters(), help).
ENGINE_COUNTERS = (
    ("inboxd_bytes_read_total", "bytes_read", "Bytes read from inbox files."),
    ("inboxd_lines_read_total", "lines_read", "Complete lines read from inbox files."),
    ("inboxd_lines_out_total", "lines_out", "Lines written to the outbox."),
    ("inboxd_deadletters_total", "deadletters", "Lines sent to the dead-letter table."),
    ("inboxd_errors_dropped_total", "errors_dropped", "Error rows dropped before SQLite."),
    ("inboxd_traces_dropped_total", "traces_dropped", "Trace rows dropped before SQLite."),
    ("inboxd_flush_failures_total", "flush_failures", "Flushes to SQLite that failed."),
)

# Per-sink figures: (metric name, key in a SinkBoard snapshot row, kind, help).
SINK_METRICS = (
    (
        "inboxd_sink_lines_total",
        "lines",
        COUNTER,
        "Lines the sink has delivered: made durable (file, sqlite), written (stdout) or "
        "acknowledged by the server (http 2xx, nats PubAck).",
    ),
    (
        "inboxd_sink_errors_total",
        "errors",
        COUNTER,
        "Failed deliveries of the sink: a write that faulted, a POST or publish that failed.",
    ),
    (
        "inboxd_sink_pending_lines",
        "pending",
        GAUGE,
        "Lines accepted for the sink and not delivered yet (an http or nats sink's spool).",
    ),
)

# /health statuses as numbers, so that alerts can compare them.
HEALTH_LEVELS = {"ok": 0.0, "degraded": 1.0, "failing": 2.0}


class Figure(NamedTuple):
    """One metric family: its samples are (label values, value), in `labels` order."""

    name: str
    kind: str  # COUNTER or GAUGE
    help: str
    labels: tuple[str, ...] = ()
    samples: tuple[tuple[tuple[str, ...], float], ...] = ()


class HasFigures(Protocol):
    """A part that exposes figures; collect() must be safe from any thread."""

    def collect(self) -> Iterable[Figure]: ...


def single(name: str, kind: str, help: str, value: float) -> Figure:
    """A family of one unlabelled sample."""
    return Figure(name, kind, help, (), (((), value),))


def processor_figures(stats: Mapping[str, Mapping[str, float]]) -> Iterator[Figure]:
    """The per-processor counters of one /stats document."""
    for name, key, doc in PROCESSOR_METRICS:
        samples = tuple(((processor,), float(f[key])) for processor, f in stats.items())
        yield Figure(name, COUNTER, doc, ("processor",), samples)


def engine_figures(
    counters: Mapping[str, float], files: Sequence[FileStatus], *, started: float, tracing: bool
) -> Iterator[Figure]:
    """The engine-wide counters and gauges of one telemetry snapshot."""
    for name, key, doc in ENGINE_COUNTERS:
        yield single(name, COUNTER, doc, float(counters.get(key, 0)))
    yield single("inboxd_dirty_files", GAUGE, "Files marked changed and waiting to be read.",
                 float(counters.get("dirty", 0)))  # fmt: skip
    yield single("inboxd_files_tracked", GAUGE, "Input files currently tracked.", float(len(files)))
    yield single("inboxd_lag_bytes", GAUGE,
                 "Bytes of tracked input files not read yet, summed over files.",
                 float(sum(f.lag for f in files)))  # fmt: skip
    yield single("inboxd_start_time_seconds", GAUGE,
                 "Start time of the engine since the Unix epoch.", started)  # fmt: skip
    yield single("inboxd_files_failing", GAUGE,
                 "Input files in the error state (retried with back-off).",
                 float(sum(1 for f in files if f.state == "error")))  # fmt: skip
    yield single("inboxd_engine_stalled_seconds", GAUGE,
                 "Seconds the engine has made no progress while busy, once past stall_timeout; "
                 "0 while it progresses or is idle.",
                 float(counters.get("engine_stalled_seconds", 0)))  # fmt: skip
    yield single("inboxd_tracing_enabled", GAUGE, "1 when every line's path is recorded.",
                 1.0 if tracing else 0.0)  # fmt: skip


def sink_figures(rows: Sequence[Mapping[str, Any]]) -> Iterator[Figure]:
    """One series per configured sink; no family at all when there is none."""
    if not rows:
        return
    for name, key, kind, doc in SINK_METRICS:
        yield Figure(name, kind, doc, ("sink",), tuple(((r["name"],), float(r[key])) for r in rows))


def health_figures(checks: Mapping[str, Mapping[str, Any]]) -> Iterator[Figure]:
    """Each /health check's status as a number."""
    samples = tuple(
        ((check,), HEALTH_LEVELS.get(str(doc.get("status")), 2.0)) for check, doc in checks.items()
    )
    yield Figure("inboxd_health_status", GAUGE,
                 "Status of each /health check: 0 ok, 1 degraded, 2 failing.", ("check",),
                 samples)  # fmt: skip


__all__ = [
    "COUNTER",
    "GAUGE",
    "Figure",
    "HasFigures",
    "engine_figures",
    "health_figures",
    "processor_figures",
    "single",
    "sink_figures",
]
