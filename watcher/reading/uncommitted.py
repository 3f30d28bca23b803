"""Telemetry of lines routed but not yet committed, and the logs of routed errors.

Stats, errors and dead-letter counts of a routed chunk are published when the commit
that covers its lines succeeds. After a shared fault the uncommitted lines are read and
routed again from their checkpoints; publishing only committed work keeps /stats and
the metrics history exact (each line counted once). Traces go out at once: they show
what is flowing now.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import cast

from processors.router import Routed
from store.live.telemetry import Telemetry, merge_stats
from store.records import DeadLetter, ErrorRecord, TraceBatch, TraceRecord

log = logging.getLogger("inboxd.engine")

# Past this many held errors the oldest are published without waiting for the commit.
HELD_ERRORS_MAX = 10_000


class RecordBatch:
    """Trace records built by a worker, shaped as the TraceBatch a tap reads."""

    def __init__(self, records: list[TraceRecord]) -> None:
        self._records = records
        self.file = records[0].file if records else None
        self.terminals = records

    def records(self, start: int = 0, stop: int | None = None) -> list[TraceRecord]:
        return self._records[start:stop]


class PendingTelemetry:
    """What routed lines add to telemetry, held until their commit; processing thread only."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self._stats: dict[str, list[float]] = {}
        self._errors: list[ErrorRecord] = []
        self._dead: list[DeadLetter] = []

    def add(self, routed: Routed) -> None:
        merge_stats(self._stats, routed.stats)
        if routed.errors:
            self._errors.extend(routed.errors)
            if len(self._errors) > HELD_ERRORS_MAX:
                self.telemetry.add_errors(self._errors)
                self._errors = []
        if routed.deadletters:
            self._dead.extend(routed.deadletters)
        if routed.traces is not None:
            self.telemetry.add_traces(routed.traces)

    def add_traces(self, traces: list[TraceRecord]) -> None:
        """Trace records built elsewhere (by a worker process): published at once."""
        t = self.telemetry
        if t.trace_enabled:
            t.add_trace_records(traces)
        if t.tap.active:
            # RecordBatch has what publish() reads of a TraceBatch.
            t.tap.publish(cast(TraceBatch, RecordBatch(traces)))

    def publish(self) -> None:
        """The lines routed so far are committed: their telemetry counts."""
        t = self.telemetry
        if self._stats:
            t.add_stats(self._stats)
            self._stats = {}
        if self._errors:
            t.add_errors(self._errors)
            self._errors = []
        if self._dead:
            t.note_deadletters(self._dead)
            self._dead = []

    def discard(self) -> None:
        """The lines routed so far will be read and routed again."""
        self._stats, self._errors, self._dead = {}, [], []


def log_errors(errors: Iterable[ErrorRecord]) -> None:
    for e in errors:
        log.warning(
            "processor error",
            extra={"event": "error", "processor": e.processor, "error": e.message,
                   "file": e.file, "line_no": e.line_no},
        )  # fmt: skip


def log_deadletters(letters: Iterable[DeadLetter]) -> None:
    for d in letters:
        log.warning(
            "dead letter",
            extra={"event": "deadletter", "processor": d.processor, "tag": d.tag,
                   "error": d.message, "file": d.file, "line_no": d.line_no},
        )  # fmt: skip
