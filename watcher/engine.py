"""The processing thread: read dirty files, route their lines, write the outbox, commit.

Exactly one thread runs this. It owns the checkpoint connection, the outbox
descriptors and the table of tracked files; it is the only writer of telemetry.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable
from typing import Protocol

from processors.options import Settings
from processors.router import Router
from store.checkpoints import CheckpointStore
from store.outbox import Outbox, recover
from store.records import DeadLetter, ErrorRecord, FileStatus
from store.telemetry import Telemetry
from watcher.dirty import DirtySet
from watcher.reader import FileReader

log = logging.getLogger("inboxd.engine")

# How often /files is refreshed and STATUS= is sent.
FILES_REFRESH_S = 1.0
STATUS_EVERY_S = 5.0
# While files keep coming, commits are grouped at most this far apart.
COMMIT_EVERY_S = 0.2
# A checkpoint of a file that has disappeared is forgotten after this long.
GONE_EXPIRY_S = 3600.0


class Notifier(Protocol):
    def watchdog(self) -> None: ...
    def status(self, text: str) -> None: ...
    def next_ping_in(self, now: float) -> float: ...


class _NullNotifier:
    def watchdog(self) -> None:
        return None

    def status(self, text: str) -> None:
        return None

    def next_ping_in(self, now: float) -> float:
        return math.inf


class Engine:
    """Owns the processing thread (start/stop/join) or runs one pass with run_once()."""

    def __init__(
        self,
        *,
        settings: Settings,
        router: Router,
        telemetry: Telemetry,
        dirty: DirtySet | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.router = router
        self.telemetry = telemetry
        # `is None`, not `or`: an empty DirtySet is falsy (it has __len__), and a fresh one
        # here would leave the watcher marking a set nobody reads.
        self.dirty = dirty if dirty is not None else DirtySet()
        self.notifier: Notifier = notifier or _NullNotifier()
        self.error: BaseException | None = None
        self.started = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_router: Router | None = None
        self._swap_lock = threading.Lock()
        self._reader: FileReader | None = None
        self._next_files = 0.0
        self._next_status = 0.0
        self._last_lines = 0.0
        self._last_commit = 0.0
        self._files_generation = -1

    # -- thread ownership ----------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._main, name="inboxd-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.dirty.wake()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def set_router(self, router: Router) -> None:
        """Swap the pipeline between batches (SIGHUP reload); thread-safe."""
        with self._swap_lock:
            self._next_router = router
        self.dirty.wake()

    # -- running ------------------------------------------------------------------------

    def run_once(self) -> None:
        """Process everything the inbox holds now, last partial lines included."""
        reader = self._open()
        try:
            while True:
                found = reader.scan()
                if not reader.process(found.values(), final=True):
                    break
            reader.commit()
            self._publish_files(reader)
        finally:
            reader.close()

    def _main(self) -> None:
        try:
            reader = self._open()
        except BaseException as exc:
            self.error = exc
            log.exception("engine failed to start")
            self.started.set()
            return
        self.started.set()
        try:
            self._loop(reader)
        except BaseException as exc:
            self.error = exc
            log.exception("engine thread died")
        finally:
            try:
                reader.commit()
            except Exception:
                log.exception("final commit failed")
            reader.close()

    def _open(self) -> FileReader:
        s = self.settings
        s.inbox.mkdir(parents=True, exist_ok=True)
        s.outbox.mkdir(parents=True, exist_ok=True)
        store = CheckpointStore(s.db_path)
        files, sizes = store.load()
        for rel, was, now in recover(s.outbox, sizes):
            log.warning(
                "outbox cut back to its committed size",
                extra={"event": "outbox_recovered", "file": rel, "from": was, "to": now},
            )
        self.telemetry.register(self.router.pipeline.names)
        reader = FileReader(
            settings=s,
            store=store,
            outbox=Outbox(s.outbox, sizes),
            files=files,
            route=self._route,
            telemetry=self.telemetry,
        )
        self._reader = reader
        return reader

    def _loop(self, reader: FileReader) -> None:
        s = self.settings
        next_rescan = 0.0
        self._next_files = 0.0
        self._next_status = time.monotonic() + STATUS_EVERY_S
        while True:
            now = time.monotonic()
            self._maybe_swap_router()
            if now >= next_rescan:
                found = reader.scan()
                reader.mark_gone(found, expiry_s=GONE_EXPIRY_S)
                todo = reader.changed(found.values())
                next_rescan = now + s.rescan_interval
            else:
                timeout = min(next_rescan, reader.next_partial_deadline(), self._next_files) - now
                timeout = min(timeout, self.notifier.next_ping_in(now))
                paths, rescan = self.dirty.take(max(timeout, 0.0) if not self._stop.is_set() else 0)
                if rescan:
                    next_rescan = 0.0
                    continue
                todo = reader.resolve(paths)
            self.notifier.watchdog()
            again = reader.process(todo, final=False, tick=self._tick)
            reader.process(reader.due_partials(), final=True, tick=self._tick)
            self._maybe_commit(reader, busy=bool(again) or len(self.dirty) > 0)
            for path in again:
                self.dirty.mark(path)
            self._publish(reader)
            if self._stop.is_set():
                # The backlog stays in the inbox behind the checkpoints: a stop never
                # waits for it.
                return

    def _publish(self, reader: FileReader) -> None:
        """Refresh the dirty gauge, /files about once a second and STATUS= every 5 s.

        /files is rebuilt only when a commit changed something since: an idle daemon
        tracking thousands of files does no work for it.
        """
        self.telemetry.set_gauge("dirty", len(self.dirty))
        now = time.monotonic()
        if now >= self._next_files:
            if reader.generation != self._files_generation:
                self._publish_files(reader)
                self._files_generation = reader.generation
            self._next_files = now + FILES_REFRESH_S
        if now >= self._next_status:
            lines = self.telemetry.counters()["lines_read"]
            rate = (lines - self._last_lines) / (STATUS_EVERY_S + now - self._next_status)
            self.notifier.status(f"{rate:.0f} lines/s, {len(reader.files)} files tracked")
            self._last_lines, self._next_status = lines, now + STATUS_EVERY_S

    def _maybe_commit(self, reader: FileReader, *, busy: bool) -> None:
        """Commit when the engine goes idle, and at least every COMMIT_EVERY_S while busy.

        Lines reach the outbox before their commit either way; grouping the commits of a
        storm of small files saves a file-system sync per pass (a crash in between only
        means more lines are taken again from their checkpoints).
        """
        now = time.monotonic()
        if not busy or self._stop.is_set() or now - self._last_commit >= COMMIT_EVERY_S:
            reader.commit()
            self._last_commit = now

    def _tick(self) -> bool:
        """Between two files of a pass: ping the watchdog; True when asked to stop."""
        self.notifier.watchdog()
        return self._stop.is_set()

    def _maybe_swap_router(self) -> None:
        with self._swap_lock:
            router, self._next_router = self._next_router, None
        if router is not None:
            self.router = router
            self.telemetry.register(router.pipeline.names)
            log.info("pipeline reloaded", extra={"event": "reloaded"})

    def _publish_files(self, reader: FileReader) -> None:
        self.telemetry.set_files(
            [
                FileStatus(f.path, f.size, f.offset, f.state, f.outbox, f.lines, f.updated)
                for f in reader.files.values()
            ]
        )

    def _route(
        self, lines: list[str], file: str, first_line_no: int
    ) -> tuple[list[str], list[DeadLetter]]:
        """Route one chunk and publish its telemetry; returns (outbox lines, dead letters)."""
        routed = self.router.route(lines, file, first_line_no)
        t = self.telemetry
        t.add_stats(routed.stats)
        if routed.errors:
            t.add_errors(routed.errors)
            _log_errors(routed.errors)
        if routed.traces is not None:
            t.add_traces(routed.traces)
        if routed.deadletters:
            t.note_deadletters(routed.deadletters)
            _log_deadletters(routed.deadletters)
        return routed.out, routed.deadletters


def _log_errors(errors: Iterable[ErrorRecord]) -> None:
    for e in errors:
        log.warning(
            "processor error",
            extra={"event": "error", "processor": e.processor, "error": e.message,
                   "file": e.file, "line_no": e.line_no},
        )  # fmt: skip


def _log_deadletters(letters: Iterable[DeadLetter]) -> None:
    for d in letters:
        log.warning(
            "dead letter",
            extra={"event": "deadletter", "processor": d.processor, "tag": d.tag,
                   "error": d.message, "file": d.file, "line_no": d.line_no},
        )  # fmt: skip
