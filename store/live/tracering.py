"""The ring of recent traces behind /trace and /traces, built only when someone reads it.

With tracing on, every routed batch ends hundreds of thousands of paths, and the ring
keeps the newest `size` of them. Turning each into a record (its path of tags, its line
kept per `keep_lines`, which may mean masking it) as it arrives would do that work for
the whole stream and throw nearly all of it away. The ring keeps slices of the batches
instead and builds records from the newest slices when a reader asks.

Memory stays bounded: whole slices are dropped from the old end as soon as the newer ones
hold `size` paths, so at most one slice (the oldest) lies partly outside the window, and
every line of a batch ends at least one path; the ring holds at most `size` lines plus
one batch.

Thread-safety: the processing thread adds, readers take a snapshot of the slices under
the lock and build records outside it. Batches are never changed once routed.
"""

from __future__ import annotations

import threading
from collections import deque

from store.records import TraceBatch, TraceRecord, path_of


class _Slice:
    """`batch.terminals[start:stop]`, or finished `records` when batch is None."""

    __slots__ = ("batch", "records", "size", "start", "stop")

    def __init__(
        self, batch: TraceBatch | None, records: list[TraceRecord] | None, start: int, stop: int
    ) -> None:
        self.batch = batch
        self.records = records
        self.start = start
        self.stop = stop
        self.size = stop - start

    def newest_records(self, count: int) -> list[TraceRecord]:
        if self.batch is not None:
            return self.batch.records(self.stop - count, self.stop)
        assert self.records is not None
        return self.records[self.stop - count : self.stop]

    def newest_paths(self, count: int) -> list[tuple[str, ...]]:
        if self.batch is not None:
            return [path_of(b) for b in self.batch.terminals[self.stop - count : self.stop]]
        assert self.records is not None
        return [r.path for r in self.records[self.stop - count : self.stop]]


class TraceRing:
    """The newest `size` traces, as slices of routed batches."""

    def __init__(self, size: int) -> None:
        self.size = max(size, 0)
        self._lock = threading.Lock()
        self._slices: deque[_Slice] = deque()
        self._count = 0

    def add_batch(self, batch: TraceBatch) -> None:
        n = len(batch.terminals)
        if self.size and n:
            self._add(_Slice(batch, None, max(n - self.size, 0), n))

    def add_records(self, records: list[TraceRecord]) -> None:
        n = len(records)
        if self.size and n:
            self._add(_Slice(None, records, max(n - self.size, 0), n))

    def _add(self, part: _Slice) -> None:
        with self._lock:
            self._slices.append(part)
            self._count += part.size
            while self._count - self._slices[0].size >= self.size:
                self._count -= self._slices.popleft().size

    def records(self, limit: int | None = None) -> list[TraceRecord]:
        """Newest last; at most `limit` of the most recent."""
        return [r for part, n in self._newest(limit) for r in part.newest_records(n)]

    def paths(self, limit: int | None = None) -> list[tuple[str, ...]]:
        """The paths of records(limit), without building the records."""
        return [p for part, n in self._newest(limit) for p in part.newest_paths(n)]

    def _newest(self, limit: int | None) -> list[tuple[_Slice, int]]:
        """The slices holding the newest traces and how many of each, oldest first."""
        with self._lock:
            parts = list(self._slices)
            wanted = min(self._count, self.size)
        if limit is not None:
            wanted = min(wanted, max(limit, 0))
        chosen: list[tuple[_Slice, int]] = []
        for part in reversed(parts):
            if wanted <= 0:
                break
            take = min(part.size, wanted)
            chosen.append((part, take))
            wanted -= take
        chosen.reverse()
        return chosen
