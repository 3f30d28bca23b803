"""The set of paths waiting to be read, between the watcher and the processing thread.

An event storm never grows a queue: events land in a set (the same path marked a
thousand times is one entry), and past DIRTY_MAX distinct paths the set collapses into
a single "rescan everything" flag.
"""

from __future__ import annotations

import threading

DIRTY_MAX = 10_000


class DirtySet:
    """Paths waiting to be read; filled by the observer thread, drained by the engine."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._paths: set[str] = set()
        self._rescan = False
        self._woken = False

    def mark(self, path: str) -> None:
        with self._cond:
            if not self._rescan:
                self._paths.add(path)
                if len(self._paths) > DIRTY_MAX:
                    self._paths.clear()
                    self._rescan = True
            self._cond.notify()

    def mark_rescan(self) -> None:
        with self._cond:
            self._paths.clear()
            self._rescan = True
            self._cond.notify()

    def wake(self) -> None:
        """Wake the engine without marking anything (stop, reload)."""
        with self._cond:
            self._woken = True
            self._cond.notify()

    def __len__(self) -> int:
        with self._cond:
            return len(self._paths)

    def take(self, timeout: float | None) -> tuple[set[str], bool]:
        """Wait up to `timeout` for work; returns (paths, rescan) and empties the set."""
        with self._cond:
            if not self._paths and not self._rescan and not self._woken:
                self._cond.wait(timeout)
            paths, self._paths = self._paths, set()
            rescan, self._rescan = self._rescan, False
            self._woken = False
            return paths, rescan
