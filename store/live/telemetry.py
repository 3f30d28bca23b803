"""In-memory telemetry: per-processor counters, the trace ring and the error ring.

Thread-safety: the processing thread is the only writer. Every writer call takes the
lock for a handful of dict/deque operations per batch (never per line); readers copy a
snapshot under the same lock and serialise it outside.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from store.live.figures import Figure, engine_figures, processor_figures
from store.live.health import HealthBoard
from store.live.sinkboard import SinkBoard
from store.live.tap import TapHub
from store.live.tracering import TraceRing
from store.records import (
    DeadLetter,
    ErrorRecord,
    FileStatus,
    TraceBatch,
    TraceRecord,
)

# Rows waiting for the SQLite flusher are bounded so that a flood of errors or traces
# cannot grow memory without limit; what does not fit is counted as dropped.
PENDING_ERRORS_MAX = 10_000
# At most this many traces are written to SQLite per flush: all of them at the rates a
# person reads, a sample when a million lines a minute go by.
PENDING_TRACES_MAX = 10_000

# Counter slots of a processor's stats list.
COUNT, TIME, ERRORS, RETRIES = 0, 1, 2, 3


def merge_stats(into: dict[str, list[float]], deltas: Mapping[str, list[float]]) -> None:
    """Add [count, time, errors, retries] per processor of `deltas` to `into`."""
    for name, d in deltas.items():
        s = into.get(name)
        if s is None:
            into[name] = list(d)
        else:
            s[0] += d[0]
            s[1] += d[1]
            s[2] += d[2]
            s[3] += d[3]


@dataclass(frozen=True, slots=True)
class FlushBatch:
    """What the flusher writes: metric deltas since the last flush and the new rows."""

    ts: float
    metrics: list[dict[str, Any]]
    errors: list[ErrorRecord]
    traces: list[TraceRecord]


class Telemetry:
    """Counters and rings shared by the processing thread (writer) and readers."""

    def __init__(
        self,
        *,
        trace_enabled: bool = False,
        trace_size: int = 1000,
        errors_size: int = 1000,
    ) -> None:
        self.trace_enabled = trace_enabled
        # Connected `tap` clients: the router traces while there is one (even without
        # --trace); their paths go to them only, not to the ring or SQLite.
        self.tap = TapHub()
        # What /health reports; every part sets its own checks.
        self.health = HealthBoard()
        # Replaced by the daemon when the config names sinks.
        self.sinks = SinkBoard()
        self.started = time.time()
        self._lock = threading.Lock()
        self._stats: dict[str, list[float]] = {}
        self._flushed: dict[str, tuple[float, ...]] = {}
        self._errors: deque[ErrorRecord] = deque(maxlen=max(errors_size, 0))
        self._traces = TraceRing(trace_size)
        self._pending_errors: list[ErrorRecord] = []
        self._pending_traces: list[TraceRecord] = []
        self._files: list[FileStatus] = []
        self._counters: dict[str, float] = {
            "bytes_read": 0,
            "lines_read": 0,
            "lines_out": 0,
            "deadletters": 0,
            "errors_dropped": 0,
            "traces_dropped": 0,
            "dirty": 0,
        }

    # -- writer side (processing thread) ---------------------------------------------

    def register(self, names: Iterable[str]) -> None:
        """Make processors visible in /stats before they have seen a line."""
        with self._lock:
            for name in names:
                self._stats.setdefault(name, [0, 0.0, 0, 0])

    def add_stats(self, deltas: Mapping[str, list[float]]) -> None:
        """Add one batch of [count, time, errors, retries] per processor."""
        with self._lock:
            merge_stats(self._stats, deltas)

    def add_errors(self, records: list[ErrorRecord]) -> None:
        with self._lock:
            self._errors.extend(records)
            room = PENDING_ERRORS_MAX - len(self._pending_errors)
            if room < len(records):
                self._counters["errors_dropped"] += len(records) - max(room, 0)
            if room > 0:
                self._pending_errors.extend(records[:room])

    def add_traces(self, batch: TraceBatch) -> None:
        """Keep the newest paths in the ring and as many as fit for the flusher."""
        n = len(batch.terminals)
        if not n:
            return
        if self.tap.active:
            self.tap.publish(batch)
        if not self.trace_enabled:
            return
        self._traces.add_batch(batch)
        with self._lock:
            room = max(PENDING_TRACES_MAX - len(self._pending_traces), 0)
        pending = batch.records(0, room) if room else []
        with self._lock:
            self._pending_traces.extend(pending)
            self._counters["traces_dropped"] += n - len(pending)

    def add_trace_records(self, records: list[TraceRecord]) -> None:
        """Add finished trace records (the ring keeps the newest, the flusher what fits)."""
        self._traces.add_records(records)
        with self._lock:
            room = max(PENDING_TRACES_MAX - len(self._pending_traces), 0)
            self._pending_traces.extend(records[:room])
            self._counters["traces_dropped"] += len(records) - min(room, len(records))

    def add_counts(self, **deltas: float) -> None:
        """Add to the engine-wide counters (bytes_read, lines_read, lines_out, ...)."""
        with self._lock:
            for key, value in deltas.items():
                self._counters[key] = self._counters.get(key, 0) + value

    def set_gauge(self, key: str, value: float) -> None:
        with self._lock:
            self._counters[key] = value

    def set_files(self, files: list[FileStatus]) -> None:
        with self._lock:
            self._files = files

    def note_deadletters(self, letters: list[DeadLetter]) -> None:
        with self._lock:
            self._counters["deadletters"] += len(letters)

    # -- reader side -------------------------------------------------------------------

    def stats(self) -> dict[str, dict[str, float]]:
        """The /stats document: one key per processor."""
        with self._lock:
            copy = [(name, tuple(s)) for name, s in self._stats.items()]
        return {
            name: {"count": int(s[0]), "time": s[1], "errors": int(s[2]), "retries": int(s[3])}
            for name, s in copy
        }

    def counters(self) -> dict[str, float]:
        with self._lock:
            return dict(self._counters)

    def files(self) -> list[FileStatus]:
        with self._lock:
            return list(self._files)

    def collect(self) -> Iterator[Figure]:
        """The /metrics figures of the processors and of the engine (sinks and health
        have their own)."""
        yield from processor_figures(self.stats())
        yield from engine_figures(self.counters(), self.files(), started=self.started,
                                  tracing=self.trace_enabled)  # fmt: skip

    def trace_records(self, limit: int | None = None) -> list[TraceRecord]:
        """Newest last; at most `limit` of the most recent."""
        return self._traces.records(limit)

    def trace_paths(self, limit: int | None = None) -> list[list[str]]:
        return [list(path) for path in self._traces.paths(limit)]

    def error_records(self, limit: int | None = None) -> list[ErrorRecord]:
        with self._lock:
            records = list(self._errors)
        if limit is not None:
            records = records[-limit:] if limit > 0 else []
        return records

    def take_flush(self, now: float | None = None) -> FlushBatch:
        """Deltas since the previous call plus the rows waiting; called by the flusher."""
        ts = time.time() if now is None else now
        with self._lock:
            current = {name: tuple(s) for name, s in self._stats.items()}
            errors, self._pending_errors = self._pending_errors, []
            traces, self._pending_traces = self._pending_traces, []
            previous, self._flushed = self._flushed, current
        return FlushBatch(ts, metric_deltas(current, previous, ts), errors, traces)


def metric_deltas(
    current: Mapping[str, tuple[float, ...]],
    previous: Mapping[str, tuple[float, ...]],
    ts: float,
) -> list[dict[str, Any]]:
    """Rows of the `metrics` table: the increase of each processor since `previous`.

    Processors that did nothing in the interval get no row, so an idle daemon does not
    grow the table.
    """
    rows: list[dict[str, Any]] = []
    for name, cur in current.items():
        prev = previous.get(name, (0, 0.0, 0, 0))
        delta = [c - p for c, p in zip(cur, prev, strict=True)]
        if any(delta):
            rows.append(
                {
                    "ts": ts,
                    "processor": name,
                    "count": int(delta[0]),
                    "time": float(delta[1]),
                    "errors": int(delta[2]),
                    "retries": int(delta[3]),
                }
            )
    return rows


__all__ = ["FlushBatch", "Telemetry", "metric_deltas"]
