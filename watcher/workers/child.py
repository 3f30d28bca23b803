"""A worker process: routes chunks for the daemon's processing thread (`workers` >= 2).

The daemon sends a chunk as bytes (complete lines joined by newlines: pickling many small
strings would cost as much as routing them) and gets back the outbox bytes, the dead
letters and errors, the per-processor figures and the traces the daemon keeps. The
pipeline is loaded here, so factories are called once per worker and a stateful
processor holds one state per worker.

Shared memory tells the daemon what the worker is doing without a message per call: the
processor a wave runs (written by the router's wave hook) and a progress count with the
line in flight, kept by a sampling thread as the engine's own stall watch does.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from cli.inputs import decode_lines
from processors.factory import RouterSpec, build_router
from processors.router import Routed, Router
from store.live.telemetry import merge_stats
from store.records import SinkLines, TraceRecord
from store.service import Service

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.sharedctypes import SynchronizedArray

SAMPLE_S = 0.1
# Pipe buffers large enough for two 128 KiB chunks in flight to a worker.
PIPE_BYTES = 1024 * 1024
F_SETPIPE_SZ = 1031
PR_SET_PDEATHSIG = 1
NAME_BYTES = 64
# Joins the records of a job of multiline records. Lines are decoded with "replace", so
# this lone surrogate never occurs in them; it crosses the pipe as the byte 0xff, which
# UTF-8 never holds.
RECORD_SEP = "\udcff"
# Shared slots: [progress count, line number in flight (0: none)].
PROGRESS, LINE_NO = 0, 1


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker builds its router from (plain values: it crosses a process)."""

    router: RouterSpec
    # Traces a result carries at most: the daemon keeps no more pending.
    trace_keep: int


@dataclass(frozen=True, slots=True)
class Job:
    seq: int
    data: bytes
    file: str
    first_line_no: int
    count: int
    trace: bool = False  # build paths for this chunk (a tap client is connected)
    # Multiline records: (first line number, records) of each run of records routed in
    # one call, `data` holding the records joined by RECORD_SEP. Empty for plain lines.
    runs: tuple[tuple[int, int], ...] = ()
    # `data` is lines as read from the file, each ending with a newline: the worker
    # decodes them as the daemon would (cli.inputs.decode_lines).
    raw: bool = False


@dataclass(frozen=True, slots=True)
class Result:
    seq: int
    out: bytes
    lines_out: int
    deadletters: list[Any]
    errors: list[Any]
    stats: dict[str, list[float]]
    traces: list[TraceRecord]
    terminals: int
    sinks: SinkLines = field(default_factory=dict)


class Channel:
    """Messages both ways over two OS pipes whose buffers hold whole chunks.

    A socket pair (multiprocessing's duplex Pipe) buffers less than one chunk: sending
    the next chunk to a busy worker would block the processing thread until that worker
    is done, and the workers would take turns instead of running side by side.
    """

    def __init__(self, rx: Connection, tx: Connection) -> None:
        self.rx, self.tx = rx, tx

    def send(self, message: object) -> None:
        self.tx.send(message)

    def recv(self) -> Any:
        return self.rx.recv()

    def poll(self, timeout: float) -> bool:
        return self.rx.poll(timeout)

    def close(self) -> None:
        self.rx.close()
        self.tx.close()


def channel_pair(ctx: Any) -> tuple[Channel, Channel]:
    """(the daemon's end, the worker's end)."""
    daemon_rx, worker_tx = ctx.Pipe(duplex=False)
    worker_rx, daemon_tx = ctx.Pipe(duplex=False)
    for conn in (worker_tx, daemon_tx):
        with contextlib.suppress(OSError):
            fcntl.fcntl(conn.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
    return Channel(daemon_rx, daemon_tx), Channel(worker_rx, worker_tx)


def job_lines(job: Job) -> list[str]:
    """The lines (or records) a job carries."""
    if not job.count:
        return []
    if job.raw:
        return decode_lines(job.data)
    return job.data.decode("utf-8", "surrogateescape").split(RECORD_SEP if job.runs else "\n")


def job_line_nos(job: Job) -> list[int]:
    """The line number of each of the job's lines (of each record's first line)."""
    if not job.runs:
        return list(range(job.first_line_no, job.first_line_no + job.count))
    return [first + i for first, count in job.runs for i in range(count)]


def single_job(job: Job, line: str, line_no: int) -> Job:
    """A job of one of `job`'s lines (or records)."""
    return replace(job, data=line.encode("utf-8", "surrogateescape"), first_line_no=line_no,
                   count=1, runs=((line_no, 1),) if job.runs else (), raw=False)  # fmt: skip


def route_job(router: Router, job: Job, trace_keep: int) -> Result:
    lines = job_lines(job)
    if not job.runs:
        return _result(job.seq, router.route(lines, job.file, job.first_line_no), trace_keep)
    parts: list[Result] = []
    start = 0
    for first, count in job.runs:  # a call per run keeps each record's own line number
        routed = router.route(lines[start : start + count], job.file, first)
        parts.append(_result(job.seq, routed, trace_keep))
        start += count
    return merge_results(job.seq, parts)


def _result(seq: int, routed: Routed, trace_keep: int) -> Result:
    out = routed.out
    data = ("\n".join(out) + "\n").encode("utf-8", "replace") if out else b""
    traces: list[TraceRecord] = []
    terminals = 0
    if routed.traces is not None:
        terminals = len(routed.traces.terminals)
        traces = routed.traces.records(max(terminals - trace_keep, 0))
    return Result(seq, data, len(out), routed.deadletters, routed.errors, routed.stats,
                  traces, terminals, routed.sinks)  # fmt: skip


def merge_results(seq: int, parts: list[Result]) -> Result:
    """One result of several, in order."""
    stats: dict[str, list[float]] = {}
    for p in parts:
        merge_stats(stats, p.stats)
    return Result(
        seq,
        b"".join(p.out for p in parts),
        sum(p.lines_out for p in parts),
        [d for p in parts for d in p.deadletters],
        [e for p in parts for e in p.errors],
        stats,
        [t for p in parts for t in p.traces],
        sum(p.terminals for p in parts),
        _merge_sinks(parts),
    )


def _merge_sinks(parts: list[Result]) -> SinkLines:
    merged: SinkLines = {}
    for p in parts:
        for name, (numbers, lines) in p.sinks.items():
            have = merged.setdefault(name, ([], []))
            have[0].extend(numbers)
            have[1].extend(lines)
    return merged


def main(conn: Channel, spec: WorkerSpec, name: Any, slots: SynchronizedArray[int]) -> None:
    """The worker's loop: ("route", Job) -> Result, ("reload", WorkerSpec), ("stop",)."""
    _tie_to_parent()
    router = build_router(spec.router)
    hook = _name_writer(name)
    router.on_wave = hook
    sampler = ProgressSampler(threading.get_ident(), slots)
    sampler.start()
    try:
        _serve(conn, spec, router, hook)
    finally:
        sampler.stop()
        sampler.join(SAMPLE_S * 10)


def _serve(conn: Channel, spec: WorkerSpec, router: Router, hook: Callable[[str], None]) -> None:
    """Answer the daemon's messages until ("stop",) or the pipe closes."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        kind = message[0]
        if kind == "route":
            job = message[1]
            router.trace = spec.router.trace or job.trace
            conn.send(route_job(router, job, spec.trace_keep))
        elif kind == "reload":
            try:
                spec = message[1]
                router = build_router(spec.router, reload=True)
                router.on_wave = hook
                conn.send(("reloaded", None))
            except Exception as exc:  # the daemon keeps this worker's old pipeline
                conn.send(("reloaded", f"{type(exc).__name__}: {exc}"))
        else:
            return


def _tie_to_parent() -> None:
    """Die with the daemon (even on kill -9), and leave SIGTERM and SIGINT to it: the
    daemon finishes its batch with the workers, then stops them."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the daemon died before the tie was made
        os._exit(1)


def _name_writer(name: Any) -> Callable[[str], None]:
    def write(processor: str) -> None:
        name.value = processor.encode("utf-8", "replace")[: NAME_BYTES - 1]

    return write


class ProgressSampler(Service):
    """The worker's sampler thread: counts changes of the call in flight in `slots`.

    The daemon's stall watch reads the count (and the line in flight) from shared memory,
    so a worker busy in one long call is told apart from one that progresses. Only this
    thread writes the slots; the worker's main thread stops it before it exits.
    """

    def __init__(self, thread_id: int, slots: SynchronizedArray[int]) -> None:
        super().__init__("sampler", thread_name="inboxd-worker-sampler")
        self.thread_id = thread_id
        self.slots = slots

    def run(self) -> None:
        from processors.current import current_call

        last = None
        while not self._stop.wait(SAMPLE_S):
            current = current_call(self.thread_id)
            call = current.call if current is not None else None
            if call != last:
                last = call
                self.slots[PROGRESS] += 1
            self.slots[LINE_NO] = (current.line_no or 0) if current is not None else 0
