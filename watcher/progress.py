"""What the processing thread shows of its progress: the dirty gauge, /files, STATUS=.

Processing thread only (telemetry copies what it is given under its own lock).
"""

from __future__ import annotations

from typing import Protocol

from store.live.telemetry import Telemetry
from watcher.dirty import DirtySet
from watcher.reading.reader import FileReader

# How often /files is refreshed and STATUS= is sent.
FILES_REFRESH_S = 1.0
STATUS_EVERY_S = 5.0


class Notifier(Protocol):
    def status(self, text: str) -> None: ...


class NullNotifier:
    """A notifier for a daemon that no service manager watches."""

    def status(self, text: str) -> None:
        return None


class ProgressBoard:
    """Refreshes the dirty gauge each round, /files about once a second (only when a
    commit changed something since: an idle daemon tracking thousands of files does no
    work for it) and STATUS= every 5 s."""

    def __init__(self, telemetry: Telemetry, dirty: DirtySet, notifier: Notifier) -> None:
        self.telemetry = telemetry
        self.dirty = dirty
        self.notifier = notifier
        self.next_files = 0.0  # when /files is due (clock time)
        self._next_status = 0.0
        self._last_lines = 0.0
        self._files_generation = -1

    def publish(self, reader: FileReader, now: float) -> None:
        self.telemetry.set_gauge("dirty", len(self.dirty))
        if now >= self.next_files:
            if reader.generation != self._files_generation:
                self.publish_files(reader)
                self._files_generation = reader.generation
            self.next_files = now + FILES_REFRESH_S
        if now >= self._next_status:
            if self._next_status:
                lines = self.telemetry.counters()["lines_read"]
                rate = (lines - self._last_lines) / (STATUS_EVERY_S + now - self._next_status)
                self.notifier.status(f"{rate:.0f} lines/s, {len(reader.files)} files tracked")
                self._last_lines = lines
            self._next_status = now + STATUS_EVERY_S

    def publish_files(self, reader: FileReader) -> None:
        self.telemetry.set_files(reader.statuses())
