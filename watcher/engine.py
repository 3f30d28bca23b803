"""The processing thread: read dirty files, route their lines, write the outbox, commit.

Exactly one thread runs this. It owns the checkpoint connection, the outbox
descriptors and the table of tracked files; it is the only writer of telemetry.

The loop is `step(now)` called again and again with the time of an injected clock, so
its timing rules (partial lines, back-off, rescans) are tested without sleeping. A
shared fault (full disk, read-only file system, locked database) drops the reader with
everything it had not committed, turns /health degraded and reopens it every few
seconds: reopening cuts the outbox back to the last commit and reads again from the
checkpoints, so nothing is lost or doubled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cli.settings import Settings
from processors.current import current_call
from processors.errors import InboxdError
from processors.router import Routed, Router
from store.live.telemetry import Telemetry
from store.service import Service
from watcher.dirty import DirtySet
from watcher.pausing import BACKPRESSURE_WAIT_S, FaultPause, wait_for_sinks
from watcher.progress import Notifier, NullNotifier, ProgressBoard
from watcher.reading.choosing import Found
from watcher.reading.faults import SharedFault, probe_outbox
from watcher.reading.handoff import Handoff, InlineHandoff
from watcher.reading.poison import PoisonGuard
from watcher.reading.reader import FileReader
from watcher.reading.routing import Routing
from watcher.reading.state import open_state
from watcher.reading.uncommitted import PendingTelemetry, log_deadletters, log_errors
from watcher.stall import StallWatch

if TYPE_CHECKING:
    from watcher.workers.child import Result, WorkerSpec
    from watcher.workers.pool import WorkerPool

log = logging.getLogger("inboxd.engine")

# While files keep coming, commits are grouped at most this far apart.
COMMIT_EVERY_S = 0.2
# A checkpoint of a file that has disappeared is forgotten after this long.
GONE_EXPIRY_S = 3600.0


class Engine(Service):
    """Owns the processing thread (a Service) or runs one pass with run_once()."""

    def __init__(
        self,
        *,
        settings: Settings,
        router: Router,
        telemetry: Telemetry,
        dirty: DirtySet | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_spool: Callable[[], None] | None = None,
    ) -> None:
        super().__init__("engine", thread_name="inboxd-engine")
        self.settings = settings
        # Wakes the spooled sinks' senders after a commit spooled lines for them.
        self.on_spool = on_spool
        self.router = router
        self.telemetry = telemetry
        # `is None`, not `or`: an empty DirtySet is falsy (it has __len__), and a fresh one
        # here would leave the watcher marking a set nobody reads.
        self.dirty = dirty if dirty is not None else DirtySet()
        self.notifier: Notifier = notifier or NullNotifier()
        self.clock = clock
        self.started = threading.Event()
        self._next_router: Router | None = None
        self._swap_lock = threading.Lock()
        self.reader: FileReader | None = None
        self.pending = PendingTelemetry(telemetry)
        self.paused = FaultPause(telemetry.health)
        self._next_rescan = 0.0
        self._again: list[Found] = []
        self._last_commit = 0.0
        self.progress = ProgressBoard(telemetry, self.dirty, self.notifier)
        # Read by the supervising thread (stall watch): the loop's last heartbeat, and
        # whether it is waiting for work rather than working.
        self.beat = clock()
        self.idle = False
        self.stall = StallWatch(settings.stall_timeout)
        self.pool: WorkerPool | None = None
        if settings.workers >= 2:
            # Imported only here: one worker needs no multiprocessing at start-up.
            from watcher.workers.pool import make_pool

            self.pool = make_pool(settings, lambda t: self.router.keeper.line(t, whole=True))
        self._next_spec: WorkerSpec | None = None
        self._stalled = False

    # -- thread ownership ----------------------------------------------------------------

    def on_stop(self) -> None:
        self.dirty.wake()  # a loop waiting for work sees the stop at once

    def wait_started(self) -> None:
        """Return once the reader opened (or paused on a fault); InboxdError if it died."""
        self.started.wait()
        if self.error is not None:
            raise InboxdError(f"engine failed to start: {self.error}")

    def set_router(self, router: Router, settings: Settings | None = None) -> None:
        """Swap the pipeline between batches (SIGHUP reload); thread-safe.

        With worker processes, `settings` (the reloaded ones) carry the new pipeline to
        each of them.
        """
        with self._swap_lock:
            self._next_router = router
            if settings is not None and self.pool is not None:
                from watcher.workers.pool import worker_spec

                self._next_spec = worker_spec(settings)
        self.dirty.wake()

    # -- running ------------------------------------------------------------------------

    def run_once(self) -> None:
        """Process everything the inbox holds now, last partial lines included.

        Raises SharedFault when the outbox or the database cannot be written.
        """
        if self.pool is not None:
            self.pool.start()
        try:
            reader = self.open()
            try:
                while True:
                    wait_for_sinks(self.telemetry.sinks, reader.commit, self._stop)
                    found = reader.scan()
                    if not reader.process(found.values(), final=True):
                        break
                reader.commit()
                self._publish_files(reader)
            finally:
                reader.close()
        finally:
            if self.pool is not None:
                self.pool.stop()
                self.pool.join()  # kills a worker not ended in time

    def run(self) -> None:
        if self.pool is not None:
            self.pool.start()
        while not self._stop.is_set():
            self.step(self.clock())

    def on_error(self, exc: BaseException) -> None:
        log.error("engine thread died", exc_info=exc)

    def on_exit(self) -> None:
        self.started.set()
        self._close(commit=True)
        if self.pool is not None:
            self.pool.stop()
            self.pool.join()  # kills a worker not ended in time

    def step(self, now: float) -> None:
        """One round: (re)open after a fault when due, wait for work, read, commit."""
        self.beat = now
        if self.reader is None:
            if now < self.paused.retry_at:
                self.idle = True
                self._stop.wait(self.paused.retry_at - now)
                self.idle = False
                return
            try:
                self.reader = self.open()
                probe_outbox(self.settings.outbox)
            except SharedFault as fault:
                self._close(commit=False)
                self._pause(fault, now)
                return
            finally:
                # Started means opened once (or paused on a fault of the world): the
                # first pass over a backlog does not hold up the web server.
                self.started.set()
            self._next_rescan = now
        if self.pool is not None:
            self.pool.check()
        try:
            self._round(self.reader, now)
        except SharedFault as fault:
            self._close(commit=False)
            self._pause(fault, now)
            return
        self.paused.resume()

    def open(self) -> FileReader:
        """Load the checkpoints, cut the outbox back to them, and make a reader."""
        store, files, outbox, guard = open_state(self.settings)
        self.telemetry.register(self.router.pipeline.names)
        self.router.on_wave = guard.inflight.mark_processor
        guard.policy.keep = lambda text: self.router.keeper.line(text, whole=True)
        reader = FileReader(
            settings=self.settings, store=store, outbox=outbox, files=files,
            telemetry=self.telemetry, clock=self.clock, on_commit=self.pending.publish,
            guard=guard, handoff=self._handoff(guard), on_spool=self.on_spool,
        )  # fmt: skip
        try:
            reader.open_sinks()
        except BaseException:
            reader.close()
            raise
        return reader

    def _round(self, reader: FileReader, now: float) -> None:
        self._maybe_swap_router()
        if self._held_back(reader, now):
            return
        todo, final_todo = self._collect(reader, now)
        if self._held_back(reader, now):  # a sink failed while this round waited for work
            self._again = _merge(self._again, todo)
            self._next_rescan = now  # the files of final_todo are found again by a scan
            return
        again = reader.process(todo, final=False, tick=self._tick)
        again += reader.process(final_todo, final=True, tick=self._tick)
        self._maybe_commit(reader, now, busy=bool(again) or len(self.dirty) > 0)
        self._again = again
        self.progress.publish(reader, now)

    def _held_back(self, reader: FileReader, now: float) -> bool:
        """Back-pressure: while a spooled sink (http, nats) cannot take more, nothing is read (so no
        checkpoint moves) until its sender catches up; the sink board says why."""
        if self.telemetry.sinks.blocked() is None:
            return False
        reader.commit()
        self.idle = True
        self._stop.wait(BACKPRESSURE_WAIT_S)
        self.idle = False
        self.progress.publish(reader, now)
        return True

    def _collect(self, reader: FileReader, now: float) -> tuple[list[Found], list[Found]]:
        """What this round reads: (files, files to read to their very end)."""
        drain: list[Found] = []
        if now >= self._next_rescan:
            found = reader.scan()
            drain = reader.mark_gone(found, expiry_s=GONE_EXPIRY_S)
            todo = reader.changed(found.values())
            self._next_rescan = now + self.settings.rescan_interval
        elif self._again:
            paths, rescan = self.dirty.take(0)
            todo = reader.resolve(paths)
            if rescan:
                self._next_rescan = now
        else:
            deadline = min(self._next_rescan, reader.next_deadline(), self.progress.next_files)
            wait = max(deadline - now, 0.0) if not self._stop.is_set() else 0.0
            self.idle = True
            paths, rescan = self.dirty.take(wait)
            self.idle = False
            self.beat = self.clock()
            if rescan:
                self._next_rescan = now
            todo = reader.resolve(paths)
        todo = _merge(self._again, todo)
        return todo, drain + reader.due_partials()

    def _pause(self, fault: SharedFault, now: float) -> None:
        """Drop what was routed but not committed; reopen after SHARED_RETRY_S."""
        self.pending.discard()
        self._again = []
        self.paused.pause(fault, now)

    def _close(self, *, commit: bool) -> None:
        reader, self.reader = self.reader, None
        if reader is None:
            return
        try:
            if commit:
                reader.commit()
        except Exception:
            log.exception("final commit failed")
        finally:
            try:
                reader.close()
            except Exception:
                log.exception("closing the reader failed")

    def _maybe_commit(self, reader: FileReader, now: float, *, busy: bool) -> None:
        """Commit when the engine goes idle, and at least every COMMIT_EVERY_S while busy.

        Lines reach the outbox before their commit either way; grouping the commits of a
        storm of small files saves a file-system sync per pass (a crash in between only
        means more lines are taken again from their checkpoints).
        """
        if not busy or self._stop.is_set() or now - self._last_commit >= COMMIT_EVERY_S:
            reader.commit()
            self._last_commit = now

    def _tick(self) -> bool:
        """Between two files of a pass: a heartbeat; True when asked to stop."""
        self.beat = self.clock()
        return self._stop.is_set()

    def watch(self, now: float) -> float:
        """Seconds the engine has been stalled (0.0 when it progresses or waits for work).

        Called by the supervising thread a few times a second (see watcher/stall.py).
        """
        thread = self._thread
        sample = current_call(thread.ident if thread is not None else None)
        if sample is None and self.pool is not None:
            sample = self.pool.sample()
        return self.stall.verdict(now, sample, self.beat, self.idle, self.telemetry)

    def _maybe_swap_router(self) -> None:
        with self._swap_lock:
            router, self._next_router = self._next_router, None
            spec, self._next_spec = self._next_spec, None
        if spec is not None and self.pool is not None:
            for problem in self.pool.reload(spec):
                log.error("a worker kept its pipeline: %s", problem,
                          extra={"event": "reload_failed"})  # fmt: skip
        if router is not None:
            router.on_wave = self.router.on_wave
            self.router = router
            self.telemetry.register(router.pipeline.names)
            log.info("pipeline reloaded", extra={"event": "reloaded"})

    def _publish_files(self, reader: FileReader) -> None:
        self.progress.publish_files(reader)

    def _handoff(self, guard: PoisonGuard) -> Handoff[Any]:
        """Who routes what the reader reads: worker processes, or this thread through
        the poison guard."""
        if self.pool is None:
            return InlineHandoff(self._route, guard)
        from watcher.workers.pooled import PooledHandoff  # only with worker processes

        return PooledHandoff(self.pool, self.telemetry, self._on_result)

    def _on_result(self, result: Result) -> None:
        """A chunk routed by a worker; published with the commit that covers it."""
        self.beat = self.clock()
        self.pending.add(Routed(stats=result.stats, errors=result.errors,
                                deadletters=result.deadletters))  # fmt: skip
        if result.traces:
            self.pending.add_traces(result.traces)
        if result.errors:
            log_errors(result.errors)
        if result.deadletters:
            log_deadletters(result.deadletters)

    def _route(self, lines: list[str], file: str, first_line_no: int) -> Routing:
        """Route one chunk; its telemetry is published when its lines are committed."""
        self.beat = self.clock()
        routed = self.router.route(lines, file, first_line_no)
        self.beat = self.clock()
        self.pending.add(routed)
        if routed.errors:
            log_errors(routed.errors)
        if routed.deadletters:
            log_deadletters(routed.deadletters)
        return routed.out, routed.deadletters, routed.sinks


def _merge(first: list[Found], second: list[Found]) -> list[Found]:
    if not first:
        return second
    seen = {f.key for f in first}
    return first + [f for f in second if f.key not in seen]
