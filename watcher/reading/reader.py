"""The file side of the processing thread: which files to read, reading them, committing.

Owned by the processing thread (not thread-safe). It keeps the table of tracked files,
the outbox and the checkpoint connection, and makes sure a checkpoint never moves past
lines the outbox does not durably hold.

Faults are sorted here (watcher/reading/faults.py): an error of one file is that file's state
and the pass goes on; an error of the outbox's disk or of the database is raised as a
SharedFault for the engine to pause on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import sqlite_utils

from cli.settings import Settings
from sinks.outbox import Outbox
from sinks.writer import sink_writer
from store.checkpoints import CheckpointStore, CopySource, OutboxState, TrackedFile
from store.live.telemetry import Telemetry
from store.paths import shown
from store.records import DeadLetter, ErrorRecord, FileStatus
from watcher.reading.choosing import Found, changed_files, resolve_paths
from watcher.reading.copies import CopyMatcher
from watcher.reading.excluded import ExcludedBook, ExcludedFile
from watcher.reading.faults import (
    FaultBook,
    SharedFault,
    as_shared,
    file_statuses,
    is_shared_os_error,
    reason_of,
)
from watcher.reading.filters import PathFilter
from watcher.reading.handoff import Handoff
from watcher.reading.identity import Identities
from watcher.reading.inputs import InputFiles
from watcher.reading.multiline import InputRules, StartAtEnd
from watcher.reading.partials import PartialWaits
from watcher.reading.poison import PoisonGuard
from watcher.reading.tailer import scan, tail_at
from watcher.reading.writing import OutboxWriter

log = logging.getLogger("inboxd.watcher")

COMMIT_BYTES = 16 * 1024 * 1024
# How often a possible copy still being written is looked at again.
COPY_RECHECK_S = 0.5


class _OutboxFault(Exception):
    """The outbox file of one input cannot be opened (a fault of that file)."""


class FileReader:
    """Reads tracked files chunk by chunk and commits their progress.

    Lines are routed by `handoff`, its builder's choice (in this thread, or in worker
    processes); the reader closes the poison `guard` with itself.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: CheckpointStore,
        outbox: OutboxState,
        files: dict[tuple[int, int], TrackedFile],
        telemetry: Telemetry,
        clock: Callable[[], float] = time.monotonic,
        on_commit: Callable[[], None] | None = None,
        guard: PoisonGuard | None = None,
        handoff: Handoff[Any],
        on_spool: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.inbox = settings.inbox.resolve()
        self._prefix = str(self.inbox).rstrip("/") + "/"
        self.filter = PathFilter(settings.include, settings.exclude)
        self.store = store
        self.outbox = Outbox(
            settings.outbox, outbox.sizes, outbox.ids, on_reset=self._commit_outbox_reset
        )
        self.files = files
        self.telemetry = telemetry
        self.clock = clock
        self.faults = FaultBook()
        self.copies = CopyMatcher(store.load_copies(time.time()))
        self.identities = Identities(files, self.copies, lambda: self.clock())
        self.guard = guard
        self.writer = OutboxWriter(self.outbox, handoff, telemetry,
                                   commit_due=self._commit_midway)  # fmt: skip
        self.sinks = sink_writer(settings.sinks, self.outbox, telemetry.sinks,
                                 str(settings.state_dir), on_spool)  # fmt: skip
        self.writer.sinks = self.sinks
        self._on_commit = on_commit
        self._touched: dict[tuple[int, int], TrackedFile] = {}
        self._forget: list[tuple[int, int]] = []
        self.inputs = InputFiles()
        # Counts commits, so that /files is rebuilt only after something changed.
        self.generation = 0
        self.partials = PartialWaits(lambda: self.clock(), settings.partial_timeout)
        self.rules = InputRules(settings.inputs)
        self.excluded = ExcludedBook()
        self.at_end = StartAtEnd.at_start(self.rules, first=not files and not outbox.sizes,
                                          scan=lambda: self.scan().values())  # fmt: skip

    # -- choosing files -----------------------------------------------------------------

    def scan(self) -> dict[tuple[int, int], Found]:
        """Every file to read; the ones the rules exclude are noted for /files."""
        excluded: dict[tuple[int, int], ExcludedFile] = {}
        found = scan(self.inbox, self.filter, excluded)
        if self.excluded.update(excluded):
            self.generation += 1
        return {
            key: Found(key, rel, st.st_size, st.st_mtime_ns) for key, (rel, st) in found.items()
        }

    def changed(self, found: Iterable[Found]) -> list[Found]:
        """The scanned files that may hold something new (a full scan reads no others)."""
        return changed_files(self.files, self.faults.faults, found)

    def resolve(self, paths: Iterable[str]) -> list[Found]:
        """Turn paths from watch events into files worth reading."""
        return resolve_paths(self._prefix, self.filter, paths)

    def mark_gone(self, found: dict[tuple[int, int], Found], *, expiry_s: float) -> list[Found]:
        """Note files a full scan no longer sees; forget them after `expiry_s`.

        Returns the ones still open with unread bytes: they are read to their end first.
        """
        now = time.time()
        drain: list[Found] = []
        for key, tracked in list(self.files.items()):
            if key in found:
                continue
            if self._has_unread(key, tracked):
                drain.append(Found(key, tracked.path))
                continue
            self.inputs.close(key)
            self.faults.clear(key)
            if tracked.state != "gone":
                tracked.state, tracked.updated = "gone", now
                self._touched[key] = tracked
                self.partials.forget(key)
                extra = {"event": "file_finished", "file": shown(tracked.path),
                         "offset": tracked.offset}  # fmt: skip
                log.info("file finished", extra=extra)
            elif now - tracked.updated >= expiry_s:
                del self.files[key]
                self._touched.pop(key, None)
                self._forget.append(key)
        for key in [k for k in self.faults.faults if k not in found and k not in self.files]:
            self.faults.clear(key)
        return drain

    def _has_unread(self, key: tuple[int, int], tracked: TrackedFile) -> bool:
        fd = self.inputs.get(key)
        if fd is None:
            return False
        try:
            return os.fstat(fd).st_size > tracked.offset
        except OSError:
            return False

    def due_partials(self) -> list[Found]:
        """Files whose unread end (a line without newline, a record that may go on)
        waited past its timeout, and files in error whose back-off has run out."""
        due = self.partials.due(self.clock())
        items = [Found(k, self.files[k].path) for k in due if k in self.files]
        items.extend(Found(k, f.rel) for k, f in self.faults.due(self.clock()))
        items.extend(Found(k, rel) for k, (rel, _) in self.identities.copy_wait.items())
        return items

    def next_deadline(self) -> float:
        """When due_partials() next has something (clock time)."""
        soonest = min(self.partials.next_due(), self.faults.next_due())
        waiting = self.identities.copy_wait
        return min(soonest, self.clock() + COPY_RECHECK_S) if waiting else soonest

    # -- reading ------------------------------------------------------------------------

    def process(
        self, found: Iterable[Found], *, final: bool, tick: Callable[[], bool] | None = None
    ) -> list[Found]:
        """Read the given files; returns the ones that still have data (budget spent).

        `tick` is called between files (watchdog pings); when it returns True the pass
        ends early, and what was not read waits for the next scan.
        """
        todo = sorted(found, key=self._age)
        self.copies.forget_index()
        again: list[Found] = []
        for item in todo:
            if self._read(item, final):
                again.append(item)
            if self.writer.pending_bytes >= COMMIT_BYTES:
                self.commit()
            if tick is not None and tick():
                break
        return again

    def _age(self, item: Found) -> float:
        tracked = self.files.get(item.key)
        return tracked.first_seen if tracked is not None else float("inf")

    def _read(self, item: Found, final: bool) -> bool:
        """Read one file; its own faults become its state, shared ones are raised."""
        key = item.key
        try:
            opened = self.inputs.open(item.key, self._prefix + item.rel)
            if opened is None:
                # Gone or replaced under this name: a waiting last line can no longer be
                # read here, and leaving it due would wake the loop without pause.
                self.partials.forget(key)
                self.faults.clear(key)
                return False
            fd, st = opened
            tracked = self._track(item, fd, st.st_size)
            if tracked is None:  # empty, or a copy still being written: look again later
                self.inputs.close(key)
                return False
            try:
                self.outbox.open(tracked.outbox)
            except OSError as exc:
                if is_shared_os_error(exc):
                    raise SharedFault("disk", reason_of(exc, "outbox")) from exc
                raise _OutboxFault(reason_of(exc, f"outbox {shown(tracked.outbox)}")) from exc
            more = self._read_open(fd, st, tracked, final or st.st_nlink == 0)
        except SharedFault:
            raise
        except _OutboxFault as exc:
            self._fault(item, str(exc))
            return False
        except OSError as exc:
            self._fault(item, reason_of(exc, f"inbox {shown(item.rel)}"))
            return False
        fault = self.faults.clear(key)
        if fault is not None:
            log.info("file readable again", extra={"event": "file_recovered",
                                                   "file": shown(item.rel)})  # fmt: skip
            self.generation += 1
        if st.st_nlink == 0 and not more:
            self.inputs.close(key)
        return more

    def _read_open(self, fd: int, st: os.stat_result, tracked: TrackedFile, final: bool) -> bool:
        before = tracked.offset
        rule = self.rules.multiline_for(tracked.outbox)  # its first name: kept when rotated
        more = self.writer.read_chunks(fd, tracked, final=final, size=st.st_size,
                                       max_line_bytes=self.settings.max_line_bytes,
                                       multiline=rule)  # fmt: skip
        if tracked.offset != before:
            tracked.tail = tail_at(fd, tracked.offset)
        self.partials.note(tracked, st.st_size, final, fd, rule)
        tracked.mtime_ns = st.st_mtime_ns
        self._touched[tracked.key] = tracked
        return more

    def _fault(self, item: Found, reason: str) -> None:
        """Record a fault of one file: its state, and one error per distinct reason."""
        tracked = self.files.get(item.key)
        outbox = tracked.outbox if tracked is not None else item.rel
        self.inputs.close(item.key)
        self.partials.forget(item.key)
        if self.faults.note(item.key, item.rel, outbox, reason, self.clock(), time.time()):
            self.generation += 1
            record = ErrorRecord(time.time(), "inbox", reason, shown(item.rel), None, None)
            self.telemetry.add_errors([record])
            log.warning(reason, extra={"event": "file_error", "processor": "inbox",
                                       "file": shown(item.rel)})  # fmt: skip

    def _track(self, item: Found, fd: int, size: int) -> TrackedFile | None:
        """The checkpoint of the open file `fd`: known, renamed, cut short, a copy or new.

        None for a new file that is empty (nothing to read, nothing to recognise it by
        yet) or that starts like a copy still being written.
        """
        tracked = self.files.get(item.key)
        if tracked is None:
            if size == 0:
                return None
            tracked = self.identities.new(item.key, item.rel, fd, size)
            if tracked is None:
                return None
            self.at_end.place(fd, tracked)
        else:
            self.identities.check(fd, tracked, size, item.rel)
        tracked.state = "skipping" if tracked.state == "skipping" else "active"
        self._touched[item.key] = tracked
        return tracked

    # -- /files -------------------------------------------------------------------------

    def statuses(self) -> list[FileStatus]:
        """Every tracked file, every file in error and every excluded one, as /files shows them."""
        return file_statuses(self.files, self.faults.faults) + self.excluded.statuses(self.files)

    # -- committing ---------------------------------------------------------------------

    def _commit_outbox_reset(self, rel: str, size: int, dev: int, ino: int) -> None:
        """Make a fresh outbox file's identity durable before anything is written to it."""
        # Only the outbox entry: the sinks' lines go with the commit that covers them, once.
        self._store_commit([], {rel: (size, dev, ino)}, [], forget=(), copies=(), extra=None)

    def _commit_midway(self, fd: int, tracked: TrackedFile) -> None:
        """Commit in the middle of a file when enough is pending (worker processes route
        the chunks sent ahead meanwhile, so the fsync leaves them no time idle).

        What it records is what has been applied: `tracked` with the tail at its offset.
        """
        if self.writer.pending_bytes < COMMIT_BYTES:
            return
        tracked.tail = tail_at(fd, tracked.offset)
        self._touched[tracked.key] = tracked
        self.commit()

    def commit(self) -> None:
        """fsync the outbox, then one transaction: checkpoints, outbox sizes, dead letters."""
        dead = self.writer.deadletters
        if not (self._touched or dead or self._forget or self.copies.new):
            return
        try:
            synced = self.outbox.sync()
        except OSError as exc:
            raise SharedFault("disk", reason_of(exc, "outbox sync")) from exc
        entries = {rel: self.outbox.entry(rel) for rel in synced}
        sinks = self.sinks
        if sinks is not None:
            sinks.before_commit()
        self._store_commit(
            list(self._touched.values()), entries, dead, forget=self._forget,
            copies=self.copies.new, extra=sinks.in_commit if sinks is not None else None,
        )  # fmt: skip
        if sinks is not None:
            sinks.committed()
        self._touched.clear()
        self._forget = []
        self.copies.new = []
        self.writer.committed()
        self.generation += 1
        if self._on_commit is not None:
            self._on_commit()

    def _store_commit(
        self,
        files: list[TrackedFile],
        entries: dict[str, tuple[int, int, int]],
        dead: list[DeadLetter],
        *,
        forget: Iterable[tuple[int, int]],
        copies: Iterable[CopySource],
        extra: Callable[[sqlite_utils.Database], None] | None,
    ) -> None:
        try:
            self.store.commit(files, entries, dead, now=time.time(), forget=forget, copies=copies,
                              extra=extra)  # fmt: skip
        except Exception as exc:
            shared = as_shared(exc, "checkpoint commit")
            if shared is None:
                raise
            raise shared from exc

    def open_sinks(self) -> None:
        """Reconcile the sqlite sinks with the checkpoints (SharedFault if one cannot)."""
        if self.sinks is not None:
            self.sinks.open(self.store)
            self.sinks.reopened()

    def close(self) -> None:
        self.inputs.close_all()
        self.outbox.close()
        if self.sinks is not None:
            self.sinks.close()
        self.store.close()
        if self.guard is not None:
            self.guard.close()


__all__ = ["FileReader", "Found"]
