"""Worker processes that route chunks for the processing thread (`workers` >= 2).

The processing thread keeps reading, writing and committing; only routing moves out.
Chunks go to the workers in turn and their results are taken back in the order they were
sent, so outbox order and the commit protocol are exactly those of one worker.

A worker that dies (a crash in C code, `os._exit`, kill -9) is started again and the
chunk it was routing is routed once more one line at a time: a line that kills a worker
`poison_after` times is dead-lettered as poison (PoisonPolicy, the rule the in-process
path follows too). A worker that makes no progress for 1.5 x `stall_timeout` is killed
and handled the same way. Nothing is lost or doubled.

The processing thread owns the pool. The supervising thread only reads, through
`sample()`/`busy()`, what each worker publishes in `Worker.shared`: an immutable pair
replaced in one assignment when a worker is restarted, so a reader sees the old
process's memory or the new one's, never half of each (of a worker's queue it only asks
whether it is empty, one atomic call).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cli.config import router_spec
from cli.settings import Settings
from processors.current import CurrentCall
from store.live.telemetry import PENDING_TRACES_MAX
from store.service import Service
from watcher.reading.poison import WORKER, PoisonPolicy
from watcher.workers import child as worker
from watcher.workers.child import Channel, Job, Result, WorkerSpec
from watcher.workers.forkserver import worker_context

log = logging.getLogger("inboxd.engine")

POLL_S = 0.5
START_TIMEOUT_S = 60.0
# join() without a timeout still kills a worker that has not ended by then.
KILL_AFTER_S = 10.0
# How long a killed worker is waited for.
KILLED_JOIN_S = 5.0


@dataclass(frozen=True, slots=True)
class WorkerShared:
    """The memory one worker process shares with the daemon; never changed, replaced
    whole when the process is (so another thread reading it sees one process's)."""

    name: Any  # shared bytes: the processor its router runs now
    slots: Any  # shared [progress, line in flight]

    def processor(self) -> str:
        return bytes(self.name.value).decode("utf-8", "replace")


@dataclass(slots=True)
class Worker:
    """One worker slot of the pool: its process, channel, queue of jobs sent."""

    slot: int
    process: Any
    conn: Channel
    shared: WorkerShared
    pending: deque[Job] = field(default_factory=deque)
    progress: int = -1
    progress_at: float = 0.0

    def processor(self) -> str:
        return self.shared.processor()


@contextlib.contextmanager
def _main_unseen() -> Iterator[None]:
    """Hide the main module from multiprocessing while a worker starts.

    Otherwise every worker runs the daemon's script again as `__mp_main__` (0.2 s of
    CPU each, at every start and restart) for nothing: a worker needs only
    `watcher.workers.child` and the pipeline's own modules, which it imports itself.
    Called by the processing thread; no other thread looks at these two attributes.
    """
    main = sys.modules["__main__"]
    saved: dict[str, Any] = {
        k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__
    }
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class WorkerPool(Service):
    """Owned by the processing thread: start(), submit(), collect(), reload(), stop(), join().

    The Service surface over processes instead of a thread: stop() asks each worker to
    end, join() waits for them (and kills what is left when the time is up), is_alive()
    is true while every worker process lives, and before start. Thread-safety: only the
    processing thread calls it, except stop(), which may come from any thread.
    """

    def __init__(
        self, spec: WorkerSpec, n: int, *, poison_after: int, stall_timeout: float
    ) -> None:
        super().__init__("workers", thread_name="inboxd-worker")
        self.spec = spec
        self.n = n
        self.kill_after_s = 1.5 * stall_timeout
        self.window = 2 * n
        self.workers: list[Worker] = []
        self.restarts = 0
        self._ctx = worker_context()
        self._next = 0
        self._seq = 0
        # A worker's deaths are counted here, in memory (the engine sets policy.keep).
        self.policy = PoisonPolicy(poison_after, WORKER)

    # -- lifetime -----------------------------------------------------------------------

    def start(self) -> None:
        if not self.workers and not self.is_stopping:
            self.workers = [self._spawn(i) for i in range(self.n)]

    def on_stop(self) -> None:
        for w in self.workers:
            with contextlib.suppress(OSError):
                w.conn.send(("stop",))

    def join(self, timeout: float | None = None) -> None:
        """Wait for the workers to end after stop(); kill those still running at `timeout`."""
        if not self.is_stopping:
            return
        deadline = time.monotonic() + (KILL_AFTER_S if timeout is None else timeout)
        for w in self.workers:
            w.process.join(max(deadline - time.monotonic(), 0.0))
            if w.process.is_alive():
                w.process.kill()
                w.process.join(KILLED_JOIN_S)
            w.conn.close()
        self.workers = []

    def is_alive(self) -> bool:
        if not self.workers:
            return not self.is_stopping  # not started yet, or stopped and joined
        return all(w.process.is_alive() for w in self.workers)

    def check(self) -> None:
        """Start again any idle worker that died (a busy one is restarted when its
        result is awaited)."""
        for w in self.workers:
            if not w.pending and not w.process.is_alive():
                self._restart(w)

    def reload(self, spec: WorkerSpec) -> list[str]:
        """Load a new pipeline in every worker (between batches); returns their errors."""
        self.spec = spec
        problems = []
        for w in self.workers:
            w.conn.send(("reload", spec))
            _, problem = w.conn.recv()
            if problem:
                problems.append(problem)
        return problems

    def _spawn(self, slot: int) -> Worker:
        parent, child = worker.channel_pair(self._ctx)
        name = self._ctx.Array("c", worker.NAME_BYTES, lock=False)
        slots = self._ctx.Array("q", 2, lock=False)
        process = self._ctx.Process(
            target=worker.main, args=(child, self.spec, name, slots),
            name=f"inboxd-worker-{slot}", daemon=True,
        )  # fmt: skip
        with _main_unseen():
            process.start()
        child.close()
        return Worker(slot, process, parent, WorkerShared(name, slots),
                      progress_at=time.monotonic())  # fmt: skip

    # -- routing ------------------------------------------------------------------------

    def submit(
        self,
        data: bytes,
        file: str,
        first_line_no: int,
        count: int,
        *,
        trace: bool = False,
        runs: tuple[tuple[int, int], ...] = (),
        raw: bool = False,
    ) -> Worker:
        self._seq += 1
        job = Job(self._seq, data, file, first_line_no, count, trace, runs, raw)
        w = self.workers[self._next]
        self._next = (self._next + 1) % self.n
        w.pending.append(job)
        self._send(w, job)
        return w

    def collect(self, w: Worker) -> Result:
        """The result of `w`'s oldest job (a dead worker's chunk is routed again)."""
        job = w.pending[0]
        result = self._receive(w)
        if result is None:
            result = self._reroute(w, job)
        w.pending.popleft()
        return result

    def busy(self) -> tuple[int, str, int | None]:
        """(summed progress, processor, line) of the workers, for the stall watch.

        Safe from the supervising thread: each worker's shared memory is read through
        one reference taken once, whatever restart the processing thread makes meanwhile.
        """
        total = 0
        processor, line = "", None
        for w in self.workers:
            shared = w.shared
            total += shared.slots[worker.PROGRESS]
            if w.pending and not processor:
                processor = shared.processor()
                line = shared.slots[worker.LINE_NO] or None
        return total, processor, line

    def sample(self) -> CurrentCall | None:
        """What the workers are doing, for the stall watch: a call that changes with
        their progress."""
        progress, processor, line_no = self.busy()
        if not processor:
            return None
        return CurrentCall(f"{processor} (worker)", None, line_no, (progress, 0, 0))

    def _send(self, w: Worker, job: Job) -> None:
        with contextlib.suppress(OSError):  # a dead worker: found when its result is awaited
            w.conn.send(("route", job))

    def _receive(self, w: Worker) -> Result | None:
        """The next result of `w`, or None when it died (or was killed for hanging)."""
        while True:
            try:
                if w.conn.poll(POLL_S):
                    message = w.conn.recv()
                    if isinstance(message, Result):
                        return message
                    continue
            except (EOFError, OSError):
                return None
            if not w.process.is_alive():
                return None
            self._watch(w)

    def _watch(self, w: Worker) -> None:
        progress = w.shared.slots[worker.PROGRESS]
        now = time.monotonic()
        if progress != w.progress:
            w.progress, w.progress_at = progress, now
        elif now - w.progress_at > self.kill_after_s:
            log.error("worker %d made no progress for %.0f s in %s; killing it",
                      w.slot, now - w.progress_at, w.processor(),
                      extra={"event": "worker_hung", "processor": w.processor()})  # fmt: skip
            os.kill(w.process.pid, signal.SIGKILL)
            w.process.join(5)

    def _restart(self, w: Worker) -> str:
        """Start a fresh process in `w`'s place; returns the processor the dead one ran."""
        processor = w.processor()
        w.process.join(1)
        w.conn.close()
        fresh = self._spawn(w.slot)
        w.process, w.conn = fresh.process, fresh.conn
        w.shared = fresh.shared  # one assignment: see busy()
        w.progress, w.progress_at = -1, time.monotonic()
        self.restarts += 1
        log.warning("worker %d died in %s; started again", w.slot, processor or "?",
                    extra={"event": "worker_restarted", "processor": processor})  # fmt: skip
        return processor

    def _reroute(self, w: Worker, job: Job) -> Result:
        """Route a dead worker's chunk again one line at a time, then resend its queue."""
        processor = self._restart(w)
        parts: list[Result] = []
        for line, line_no in zip(worker.job_lines(job), worker.job_line_nos(job), strict=True):
            parts.append(self._one_line(w, job, line, line_no, processor))
        for queued in list(w.pending)[1:]:
            self._send(w, queued)
        return worker.merge_results(job.seq, parts)

    def _one_line(self, w: Worker, job: Job, line: str, line_no: int, processor: str) -> Result:
        while True:
            deaths = self.policy.deaths(job.file, line_no)
            if self.policy.is_poison(deaths):
                letter = self.policy.quarantine(job.file, line_no, line, processor, deaths)
                return Result(job.seq, b"", 0, [letter], [], {}, [], 0)
            single = worker.single_job(job, line, line_no)
            self._send(w, single)
            result = self._receive(w)
            if result is not None:
                return result
            self.policy.died(job.file, line_no)
            processor = self._restart(w)


def make_pool(settings: Settings, keep: Callable[[str], str | None]) -> WorkerPool:
    """The pool `settings` ask for; `keep` is what a dead letter keeps of a line."""
    pool = WorkerPool(worker_spec(settings), settings.workers,
                      poison_after=settings.poison_after,
                      stall_timeout=settings.stall_timeout)  # fmt: skip
    pool.policy.keep = keep
    return pool


def worker_spec(settings: Settings) -> WorkerSpec:
    """What each worker process builds its router from."""
    return WorkerSpec(router_spec(settings), trace_keep=PENDING_TRACES_MAX)
