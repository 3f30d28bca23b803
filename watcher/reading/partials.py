"""Unread ends of files: a last line without its newline, a record that may go on.

Such bytes are left for the writer to finish; once they have waited past their timeout
(partial_timeout, or a multiline rule's own) they are read anyway. Processing thread only.
"""

from __future__ import annotations

from collections.abc import Callable

from cli.inputs import Multiline
from store.checkpoints import TrackedFile
from watcher.reading.multiline import hold_timeout


class PartialWaits:
    """When each file's unread end is read anyway (clock time)."""

    def __init__(self, clock: Callable[[], float], partial_timeout: float) -> None:
        self.clock = clock
        self.partial_timeout = partial_timeout
        self._due: dict[tuple[int, int], float] = {}

    def note(
        self, tracked: TrackedFile, size: int, final: bool, fd: int, rule: Multiline | None
    ) -> None:
        """After a read of `tracked` (whose size is now `size`): wait for its end, or not."""
        key = tracked.key
        if size != tracked.size:
            tracked.changed_at = self.clock()
            tracked.size = size
        if tracked.offset < size and not final and tracked.state != "skipping":
            wait = hold_timeout(fd, size, rule, self.partial_timeout)
            self._due[key] = tracked.changed_at + wait
        else:
            self._due.pop(key, None)

    def forget(self, key: tuple[int, int]) -> None:
        self._due.pop(key, None)

    def due(self, now: float) -> list[tuple[int, int]]:
        return [k for k, at in self._due.items() if at <= now]

    def next_due(self) -> float:
        return min(self._due.values(), default=float("inf"))
