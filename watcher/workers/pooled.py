"""Reading with worker processes: chunks are routed ahead, results applied in order.

The processing thread reads a file chunk after chunk and hands each to the next worker
without waiting, up to a window of two chunks per worker; it takes the results back in
the order the chunks were read, writes their outbox bytes and moves the file's
checkpoint only then. Order per outbox file and the commit protocol are those of one
worker. Chunks are smaller than with one worker (128 KiB), so that a file of a few
megabytes already keeps every worker busy.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable

from cli.inputs import Multiline
from sinks.outbox import Outbox
from store.checkpoints import TrackedFile
from store.live.telemetry import Telemetry
from store.paths import shown
from watcher.reading.faults import SharedFault, reason_of
from watcher.reading.multiline import Records, records_of, runs
from watcher.reading.tailer import Chunk, read_chunk
from watcher.reading.writing import FILE_BUDGET_BYTES, OutboxWriter, RouteFn
from watcher.workers.child import RECORD_SEP, Result
from watcher.workers.pool import WorkerPool, _Worker

log = logging.getLogger("inboxd.watcher")

POOL_CHUNK_BYTES = 128 * 1024

_Sent = tuple[list[_Worker], Chunk]


class PooledWriter(OutboxWriter):
    """OutboxWriter whose routing runs in a WorkerPool."""

    def __init__(
        self,
        outbox: Outbox,
        route: RouteFn,
        telemetry: Telemetry,
        pool: WorkerPool,
        on_result: Callable[[Result], None],
        *,
        commit_due: Callable[[int, TrackedFile], None] | None = None,
    ) -> None:
        super().__init__(outbox, route, telemetry, None)
        self.pool = pool
        self.on_result = on_result
        # Called with the window full: commits if enough is pending, while the workers
        # route what was sent ahead.
        self.commit_due = commit_due

    def read_chunks(
        self,
        fd: int,
        tracked: TrackedFile,
        *,
        final: bool,
        size: int,
        max_line_bytes: int,
        multiline: Multiline | None = None,
    ) -> bool:
        """Read until EOF or the file's budget is spent; True when data remains.

        With `multiline`, a chunk is cut back to its last complete record, and its
        records go out as one job that the worker routes in runs of consecutive line
        numbers (so each record keeps the number of its first line).
        """
        name = shown(tracked.path)
        sent: deque[_Sent] = deque()
        try:
            more = self._send_ahead(fd, tracked, sent, name, final=final, size=size,
                                    max_line_bytes=max_line_bytes, multiline=multiline)  # fmt: skip
            while sent:
                self._apply(sent.popleft(), tracked, name)
        except BaseException:
            for workers, _ in sent:  # the reader is dropped: keep the workers' queues in step
                for w in workers:
                    self.pool.collect(w)
            raise
        return more

    def _send_ahead(
        self,
        fd: int,
        tracked: TrackedFile,
        sent: deque[_Sent],
        name: str,
        *,
        final: bool,
        size: int,
        max_line_bytes: int,
        multiline: Multiline | None,
    ) -> bool:
        """Read and hand out chunks, applying the oldest results as the window fills;
        True when the budget ran out before the end of the file."""
        ahead = dataclasses.replace(tracked)  # where reading has got to
        read = 0
        while read < FILE_BUDGET_BYTES:
            start = ahead.offset
            if start >= size and not final and ahead.state != "skipping":
                return False
            # Plain lines go to the workers as the bytes read: they decode them.
            chunk = read_chunk(fd, ahead, max_line_bytes=max_line_bytes, final=final,
                               size=size, chunk_bytes=POOL_CHUNK_BYTES,
                               decode=multiline is not None)  # fmt: skip
            if chunk.skipped:
                self._report_skipped(name, chunk.skipped, max_line_bytes)
            lines, raw = chunk.count, chunk.raw
            if multiline is None:
                sent.append((self._submit(chunk, name), chunk))
            else:
                recs, chunk = records_of(fd, chunk, multiline, final=final, size=size,
                                         max_line_bytes=max_line_bytes)  # fmt: skip
                sent.append((self._submit_records(recs, name), chunk))
                lines = recs.lines
            ahead.offset, ahead.lines = chunk.end_offset, chunk.end_lines
            ahead.state = "skipping" if chunk.skipping else "active"
            if start == 0 and chunk.end_offset > 0:
                self.sniff(fd, raw, chunk.end_offset, name)
            nbytes = chunk.end_offset - start
            self.telemetry.add_counts(bytes_read=max(nbytes, 0), lines_read=lines)
            if nbytes <= 0:
                return False
            read += nbytes
            if len(sent) >= self.pool.window and self.commit_due is not None:
                self.commit_due(fd, tracked)
            while len(sent) >= self.pool.window:
                self._apply(sent.popleft(), tracked, name)
        return True

    def _submit(self, chunk: Chunk, name: str) -> list[_Worker]:
        if not chunk.count:
            return []
        tap = self.telemetry.tap.active
        if chunk.undecoded:
            return [self.pool.submit(chunk.raw, name, chunk.first_line_no, chunk.undecoded,
                                     trace=tap, raw=True)]  # fmt: skip
        data = "\n".join(chunk.lines).encode("utf-8", "surrogateescape")
        return [self.pool.submit(data, name, chunk.first_line_no, len(chunk.lines), trace=tap)]

    def _submit_records(self, recs: Records, name: str) -> list[_Worker]:
        if not recs.texts:
            return []
        data = RECORD_SEP.join(recs.texts).encode("utf-8", "surrogateescape")
        spans = tuple((first, len(texts)) for texts, first in runs(recs.texts, recs.line_nos))
        tap = self.telemetry.tap.active
        return [self.pool.submit(data, name, recs.line_nos[0], len(recs.texts), trace=tap,
                                 runs=spans)]  # fmt: skip

    def _apply(self, sent: _Sent, tracked: TrackedFile, name: str) -> None:
        workers, chunk = sent
        # Every job of the chunk is collected before anything can raise, so that the
        # workers' queues stay in step if the reader is dropped.
        for result in [self.pool.collect(w) for w in workers]:
            self.on_result(result)
            if result.out:
                try:
                    self.outbox.append(tracked.outbox, result.out)
                except OSError as exc:
                    raise SharedFault("disk", reason_of(exc, f"outbox {name}")) from exc
                self.pending_bytes += len(result.out)
                self.telemetry.add_counts(lines_out=result.lines_out)
            self.deadletters.extend(result.deadletters)
            if result.sinks:
                self.to_sinks(tracked.outbox, name, result.sinks)
        tracked.offset, tracked.lines = chunk.end_offset, chunk.end_lines
        tracked.state = "skipping" if chunk.skipping else "active"
        tracked.updated = time.time()
