"""Telemetry of lines not yet committed, and the probe that tells a disk is writable again.

Stats, errors and dead-letter counts of a routed chunk are published when the commit
that covers its lines succeeds. After a shared fault the uncommitted lines are read and
routed again from their checkpoints; publishing only committed work keeps /stats and
the metrics history exact (each line counted once). Traces go out at once: they show
what is flowing now.
"""

from __future__ import annotations

import os
from pathlib import Path

from processors.router import Routed
from store.records import DeadLetter, ErrorRecord
from store.telemetry import Telemetry
from watcher.faults import SharedFault, reason_of

# Past this many held errors the oldest are published without waiting for the commit.
HELD_ERRORS_MAX = 10_000
PROBE_NAME = ".inboxd-probe"
PROBE_BYTES = 64 * 1024


class PendingTelemetry:
    """Owned by the processing thread."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self._stats: dict[str, list[float]] = {}
        self._errors: list[ErrorRecord] = []
        self._dead: list[DeadLetter] = []

    def add(self, routed: Routed) -> None:
        stats = self._stats
        for name, d in routed.stats.items():
            s = stats.get(name)
            if s is None:
                stats[name] = list(d)
            else:
                s[0] += d[0]
                s[1] += d[1]
                s[2] += d[2]
                s[3] += d[3]
        if routed.errors:
            self._errors.extend(routed.errors)
            if len(self._errors) > HELD_ERRORS_MAX:
                self.telemetry.add_errors(self._errors)
                self._errors = []
        if routed.deadletters:
            self._dead.extend(routed.deadletters)
        if routed.traces is not None:
            self.telemetry.add_traces(routed.traces)

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
