"""Watching the inbox: a watchdog Observer whose handler only marks paths dirty.

The handler only marks paths in a DirtySet (watcher/dirty.py), so an event storm never
grows a queue.
"""

from __future__ import annotations

import logging
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from store.service import Service
from watcher.dirty import DirtySet

log = logging.getLogger("inboxd.watcher")

# How long a re-watch waits for the Observer of the old inbox to end.
UNWATCH_JOIN_S = 5.0

# Only the events that can mean new data. Without the filter inotify also reports every
# open and close, including the engine's own reads, which tripled the events watchdog
# decoded in Python while ten thousand small files came in.
WATCHED_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]


class _Handler(FileSystemEventHandler):
    """Marks every touched path dirty; never raises into the observer thread."""

    def __init__(self, dirty: DirtySet) -> None:
        self.dirty = dirty

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            if event.event_type in ("opened", "closed_no_write"):
                return
            if event.is_directory:
                # Files may have landed in a new folder before its watch was set.
                if event.event_type in ("created", "moved"):
                    self.dirty.mark_rescan()
                return
            self.dirty.mark(_text(event.src_path))
            dest = getattr(event, "dest_path", "")
            if dest:
                self.dirty.mark(_text(dest))
        except Exception:  # the observer thread must survive anything
            log.exception("watch event handler failed")


def _text(path: str | bytes) -> str:
    return path.decode("utf-8", "surrogateescape") if isinstance(path, bytes) else path


class InboxWatcher(Service):
    """Owns the watchdog Observer thread, with the Service surface.

    The thread is watchdog's: start() starts an Observer, stop() asks it to end (it does
    not wait), join() waits for it. check() replaces the Observer when the inbox was
    removed or replaced. Thread-safety: start(), check() and join() are the owner's (the
    main thread); stop() and is_alive() may come from any thread.
    """

    def __init__(self, inbox: Path, dirty: DirtySet) -> None:
        super().__init__("watcher", thread_name="inboxd-watcher")
        self.inbox = inbox
        self.dirty = dirty
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._watched: tuple[int, int] | None = None
        self._started = False
        # Why the inbox is not watched now (None while it is): /health's `watcher` check.
        self.problem: str | None = None

    def start(self) -> None:
        if self._started or self.is_stopping:
            return
        self._started = True
        self._observer = self._watch()

    @property
    def is_started(self) -> bool:
        """True once start() ran (the thread is the Observer's, not the base's)."""
        return self._started

    def on_stop(self) -> None:
        observer = self._observer
        if observer is not None:
            observer.stop()

    def join(self, timeout: float | None = None) -> None:
        observer = self._observer
        if observer is not None:
            observer.join(timeout)

    def is_alive(self) -> bool:
        """True while watching, and while waiting for the inbox to be a folder again."""
        if self.problem is not None and not self.is_stopping:
            return True
        return self._observer is not None and self._observer.is_alive()

    def check(self) -> bool:
        """Watch the inbox again if it was removed or replaced; True when it did.

        inotify watches a folder, not a name: once the inbox is deleted (and perhaps made
        again) no event would ever come, and only the periodic rescan would read files.
        Called from the main thread's supervision loop; a stat per call.
        """
        if self.is_stopping or (self._observer is None and self.problem is None):
            return False  # not started (or stopped)
        current = self._identity()
        if self._observer is not None and current == self._watched and self._is_watching():
            return False
        if self.problem is None:
            log.warning(
                "inbox was removed or replaced; watching it again",
                extra={"event": "inbox_rewatched", "inbox": str(self.inbox)},
            )
        self._unwatch()
        try:
            self._observer = self._watch()
        except OSError as exc:
            if self.problem is None:
                log.error("cannot watch the inbox: %s", exc, extra={"event": "inbox_unwatchable"})
            self.problem = f"cannot watch {self.inbox}: {exc.strerror or exc}"
            return False
        self.problem = None
        self.dirty.mark_rescan()
        return True

    def _watch(self) -> Observer:  # type: ignore[valid-type]
        """A started Observer of the inbox (made first if missing)."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        self._watched = self._identity()
        observer = Observer()
        observer.schedule(
            _Handler(self.dirty), str(self.inbox), recursive=True, event_filter=WATCHED_EVENTS
        )
        observer.daemon = True
        observer.start()
        return observer

    def _unwatch(self) -> None:
        """End the Observer of a folder that is gone, before watching the new one."""
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=UNWATCH_JOIN_S)

    def _is_watching(self) -> bool:
        """False once the watch ended: watchdog stops an emitter whose folder was deleted.

        The inode alone cannot tell: a folder made again at once often reuses it.
        """
        observer = self._observer
        return observer is not None and all(e.is_alive() for e in observer.emitters)

    def _identity(self) -> tuple[int, int] | None:
        try:
            st = self.inbox.stat()
        except OSError:
            return None
        return (st.st_dev, st.st_ino)
