"""Live taps: the lines flowing now, for `GET /tap` and `inboxd tap`.

The processing thread publishes each routed batch's trace to the hub; every subscriber
(one per connected client) keeps at most `capacity` records waiting and takes them out at
its own pace. The hub is empty almost always, and then `active` is False and the router
builds no path at all: a tap costs nothing once the last client has left.

Thread-safety: `publish` runs on the processing thread, `subscribe`, `take` and
`unsubscribe` on the web thread; one lock guards the subscriber list and every queue.
Records are built outside it, and only as many as some subscriber has room for.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from store.filematch import file_matches
from store.records import TraceBatch, TraceRecord


@dataclass(eq=False)
class TapSubscriber:
    """One connected client: its filters and the records waiting for it."""

    tag: str | None = None
    file_glob: str | None = None
    capacity: int = 100
    queue: deque[TraceRecord] = field(default_factory=deque)
    skipped: int = 0

    def wants_file(self, file: str | None) -> bool:
        if self.file_glob is None:
            return True
        return file_matches(self.file_glob, file)

    def wants(self, record: TraceRecord) -> bool:
        return self.tag is None or self.tag in record.path

    def room(self) -> int:
        return max(self.capacity - len(self.queue), 0)


class TapHub:
    """The registry of connected taps; the router traces while it is not empty."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[TapSubscriber] = []
        # Read without the lock on the hot path: a stale answer costs one batch.
        self.active = False
        # Set when the server stops: every stream ends at its next tick.
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def subscribe(
        self, *, tag: str | None = None, file_glob: str | None = None, capacity: int = 100
    ) -> TapSubscriber:
        subscriber = TapSubscriber(tag=tag, file_glob=file_glob, capacity=max(capacity, 1))
        with self._lock:
            self._subscribers.append(subscriber)
            self.active = True
        return subscriber

    def unsubscribe(self, subscriber: TapSubscriber) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)
            self.active = bool(self._subscribers)

    def count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def take(self, subscriber: TapSubscriber, limit: int) -> tuple[list[TraceRecord], int]:
        """Up to `limit` waiting records, oldest first, and the lines skipped since last."""
        with self._lock:
            n = min(limit, len(subscriber.queue))
            records = [subscriber.queue.popleft() for _ in range(n)]
            skipped, subscriber.skipped = subscriber.skipped, 0
        return records, skipped

    def publish(self, batch: TraceBatch) -> None:
        """Offer one batch's finished paths to every subscriber that has room."""
        with self._lock:
            wanted = [(s, s.room()) for s in self._subscribers if s.wants_file(batch.file)]
        if not wanted:
            return
        built: list[TraceRecord] = []
        for subscriber, room in wanted:
            chosen: list[TraceRecord] = []
            index = 0
            total = len(batch.terminals)
            while len(chosen) < room and index < total:
                if index >= len(built):
                    built.extend(batch.records(index, min(index + 64, total)))
                record = built[index]
                index += 1
                if subscriber.wants(record):
                    chosen.append(record)
            with self._lock:
                subscriber.queue.extend(chosen)
                subscriber.skipped += total - index
