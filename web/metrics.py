"""Prometheus exposition of the engine's telemetry.

A custom Collector reads the same Telemetry snapshot that /stats serves, so the figures
never disagree and no second set of counters is kept. Each app gets its own
CollectorRegistry; nothing is registered on prometheus_client's global one. Labels are
per processor, per /health check or per configured sink only, never per file or line,
to keep series cardinality bounded.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from store.live.telemetry import Telemetry

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

# Per-sink figures: (metric name, key in a SinkBoard snapshot row, family, help).
SINK_METRICS: tuple[tuple[str, str, type[CounterMetricFamily | GaugeMetricFamily], str], ...] = (
    (
        "inboxd_sink_lines_total",
        "lines",
        CounterMetricFamily,
        "Lines the sink has delivered: made durable (file, sqlite), written (stdout) or "
        "acknowledged by the server (http 2xx, nats PubAck).",
    ),
    (
        "inboxd_sink_errors_total",
        "errors",
        CounterMetricFamily,
        "Failed deliveries of the sink: a write that faulted, a POST or publish that failed.",
    ),
    (
        "inboxd_sink_pending_lines",
        "pending",
        GaugeMetricFamily,
        "Lines accepted for the sink and not delivered yet (an http or nats sink's spool).",
    ),
)

# /health statuses as numbers, so that alerts can compare them.
HEALTH_LEVELS = {"ok": 0.0, "degraded": 1.0, "failing": 2.0}


class TelemetryCollector(Collector):
    """Turns one Telemetry snapshot into metric families at each scrape."""

    def __init__(self, telemetry: Telemetry, *, version: str, inbox: str | None = None) -> None:
        self.telemetry = telemetry
        self.version = version
        self.inbox = inbox

    def collect(self) -> Iterator[Metric]:
        yield from self.collect_processors()
        yield from self.collect_engine()
        yield from self.collect_sinks()
        yield from self.collect_health()
        yield from self.collect_info()

    def collect_processors(self) -> Iterator[Metric]:
        stats = self.telemetry.stats()
        for name, key, doc in PROCESSOR_METRICS:
            family = CounterMetricFamily(name, doc, labels=["processor"])
            for processor, figures in stats.items():
                family.add_metric([processor], float(figures[key]))
            yield family

    def collect_engine(self) -> Iterator[Metric]:
        counters = self.telemetry.counters()
        for name, key, doc in ENGINE_COUNTERS:
            yield CounterMetricFamily(name, doc, value=float(counters.get(key, 0)))
        yield GaugeMetricFamily(
            "inboxd_dirty_files",
            "Files marked changed and waiting to be read.",
            value=float(counters.get("dirty", 0)),
        )

        files = self.telemetry.files()
        yield GaugeMetricFamily(
            "inboxd_files_tracked", "Input files currently tracked.", value=float(len(files))
        )
        yield GaugeMetricFamily(
            "inboxd_lag_bytes",
            "Bytes of tracked input files not read yet, summed over files.",
            value=float(sum(f.lag for f in files)),
        )
        yield GaugeMetricFamily(
            "inboxd_start_time_seconds",
            "Start time of the engine since the Unix epoch.",
            value=self.telemetry.started,
        )
        yield GaugeMetricFamily(
            "inboxd_files_failing",
            "Input files in the error state (retried with back-off).",
            value=float(sum(1 for f in files if f.state == "error")),
        )
        yield GaugeMetricFamily(
            "inboxd_engine_stalled_seconds",
            "Seconds the engine has made no progress while busy, once past stall_timeout; "
            "0 while it progresses or is idle.",
            value=float(counters.get("engine_stalled_seconds", 0)),
        )
        yield GaugeMetricFamily(
            "inboxd_tracing_enabled",
            "1 when every line's path is recorded.",
            value=1.0 if self.telemetry.trace_enabled else 0.0,
        )

    def collect_sinks(self) -> Iterator[Metric]:
        """One series per configured sink; no family at all when there is none."""
        rows = self.telemetry.sinks.snapshot()
        if not rows:
            return
        for name, key, kind, doc in SINK_METRICS:
            family = kind(name, doc, labels=["sink"])
            for row in rows:
                family.add_metric([row["name"]], float(row[key]))
            yield family

    def collect_health(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "inboxd_health_status",
            "Status of each /health check: 0 ok, 1 degraded, 2 failing.",
            labels=["check"],
        )
        for check, doc in self.telemetry.health.snapshot().items():
            family.add_metric([check], HEALTH_LEVELS.get(str(doc.get("status")), 2.0))
        yield family

    def collect_info(self) -> Iterator[Metric]:
        """Constant series that tell instances apart in a central Prometheus."""
        info = GaugeMetricFamily("inboxd_build_info", "Version of inboxd.", labels=["version"])
        info.add_metric([self.version], 1.0)
        yield info
        if self.inbox is not None:
            inbox = GaugeMetricFamily(
                "inboxd_inbox_info", "The inbox folder this instance watches.", labels=["inbox"]
            )
            inbox.add_metric([self.inbox], 1.0)
            yield inbox


def build_registry(
    telemetry: Telemetry, *, version: str, inbox: str | None = None
) -> CollectorRegistry:
    """A registry of its own holding the telemetry and the process collectors."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(telemetry, version=version, inbox=inbox))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition of `registry`."""
    return generate_latest(registry)
