"""Telemetry of lines not yet committed, opening the state, and the disk probe.

Stats, errors and dead-letter counts of a routed chunk are published when the commit
that covers its lines succeeds. After a shared fault the uncommitted lines are read and
routed again from their checkpoints; publishing only committed work keeps /stats and
the metrics history exact (each line counted once). Traces go out at once: they show
what is flowing now.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, cast

from cli.settings import Settings
from processors.router import Routed
from sinks.outbox import recover
from store.checkpoints import CheckpointStore, OutboxState, TrackedFile
from store.live.telemetry import Telemetry, merge_stats
from store.records import DeadLetter, ErrorRecord, TraceBatch, TraceRecord
from watcher.reading.faults import SharedFault, as_shared, reason_of
from watcher.reading.poison import PoisonGuard

if TYPE_CHECKING:
    from watcher.workers.child import Result

log = logging.getLogger("inboxd.engine")

# Past this many held errors the oldest are published without waiting for the commit.
HELD_ERRORS_MAX = 10_000
PROBE_NAME = ".inboxd-probe"
PROBE_BYTES = 64 * 1024


class RecordBatch:
    """Trace records built by a worker, shaped as the TraceBatch a tap reads."""

    def __init__(self, records: list[TraceRecord]) -> None:
        self._records = records
        self.file = records[0].file if records else None
        self.terminals = records

    def records(self, start: int = 0, stop: int | None = None) -> list[TraceRecord]:
        return self._records[start:stop]


class PendingTelemetry:
    """Owned by the processing thread."""

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

    def add_result(self, result: Result) -> None:
        """A chunk routed by a worker process: the same figures, traces already built."""
        self.add(Routed(stats=result.stats, errors=result.errors,
                        deadletters=result.deadletters))  # fmt: skip
        if result.traces:
            t = self.telemetry
            if t.trace_enabled:
                t.add_trace_records(result.traces)
            if t.tap.active:
                # RecordBatch has what publish() reads of a TraceBatch.
                t.tap.publish(cast(TraceBatch, RecordBatch(result.traces)))

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


def probe_outbox(outbox: Path) -> None:
    """Write and sync a small file in the outbox; SharedFault while its disk is full or
    read-only."""
    path = os.path.join(outbox, PROBE_NAME)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, b"\0" * PROBE_BYTES)
            os.fdatasync(fd)
        finally:
            os.close(fd)
            os.unlink(path)
    except OSError as exc:
        raise SharedFault("disk", reason_of(exc, "outbox")) from exc


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


def open_state(
    s: Settings,
) -> tuple[CheckpointStore, dict[tuple[int, int], TrackedFile], OutboxState, PoisonGuard]:
    """Open the checkpoints, cut the outbox back to them, read what was in flight.

    Faults of the disk or the database come out as SharedFault.
    """
    with contextlib.suppress(OSError):  # a missing inbox is the watcher's to report
        s.inbox.mkdir(parents=True, exist_ok=True)
    try:
        s.outbox.mkdir(parents=True, exist_ok=True)
        store = CheckpointStore(s.db_path)
    except Exception as exc:
        shared = as_shared(exc, "opening the state")
        if shared is None:
            raise
        raise shared from exc
    try:
        files, outbox = store.load()
        for rel, was, now in recover(s.outbox, outbox.sizes, outbox.ids):
            log.warning(
                "outbox cut back to its committed size",
                extra={"event": "outbox_recovered", "file": rel, "from": was, "to": now},
            )
        guard = PoisonGuard.open(s.state_dir, store, files, s.poison_after)
    except Exception as exc:
        store.close()
        shared = as_shared(exc, "outbox recovery")
        if shared is None:
            raise
        raise shared from exc
    return store, files, outbox, guard
