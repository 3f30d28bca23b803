"""The workers' hand-off: chunks are routed ahead in worker processes, results applied
in order.

The chunk loop (watcher/reading/writing.py) reads a file chunk after chunk and submits
each to the next worker without waiting, up to a window of two chunks per worker; it
takes the results back in the order the chunks were read, writes their outbox bytes and
moves the file's checkpoint only then. Order per outbox file and the commit protocol
are those of one worker. Chunks are smaller than with one worker (128 KiB), so that a
file of a few megabytes already keeps every worker busy.
"""

from __future__ import annotations

from collections.abc import Callable

from store.live.telemetry import Telemetry
from watcher.reading.handoff import NOTHING, Applied
from watcher.reading.multiline import Records, runs
from watcher.reading.tailer import Chunk
from watcher.workers.child import RECORD_SEP, Result
from watcher.workers.pool import Worker, WorkerPool

POOL_CHUNK_BYTES = 128 * 1024


class PooledHandoff:
    """Hands chunks to a WorkerPool (the Handoff of watcher/reading/handoff.py).

    Processing thread only. A ticket is the worker routing the chunk, None for a chunk
    with nothing to route. `on_result` sees every result before it is applied.
    """

    decodes = False  # plain lines go to the workers as the bytes read: they decode them

    def __init__(
        self, pool: WorkerPool, telemetry: Telemetry, on_result: Callable[[Result], None]
    ) -> None:
        self.pool = pool
        self.telemetry = telemetry
        self.on_result = on_result

    @property
    def window(self) -> int:
        return self.pool.window

    @property
    def chunk_bytes(self) -> int:
        return POOL_CHUNK_BYTES

    def submit(
        self, chunk: Chunk, records: Records | None, key: tuple[int, int], name: str
    ) -> Worker | None:
        """Send the chunk's lines, or its records as one job that the worker routes in
        runs of consecutive line numbers (so each record keeps the number of its first
        line)."""
        tap = self.telemetry.tap.active  # a live tap wants the workers' trace records
        if records is not None:
            if not records.texts:
                return None
            data = RECORD_SEP.join(records.texts).encode("utf-8", "surrogateescape")
            spans = tuple((first, len(t)) for t, first in runs(records.texts, records.line_nos))
            return self.pool.submit(data, name, records.line_nos[0], len(records.texts),
                                    trace=tap, runs=spans)  # fmt: skip
        if not chunk.count:
            return None
        if chunk.undecoded:
            return self.pool.submit(chunk.raw, name, chunk.first_line_no, chunk.undecoded,
                                    trace=tap, raw=True)  # fmt: skip
        data = "\n".join(chunk.lines).encode("utf-8", "surrogateescape")
        return self.pool.submit(data, name, chunk.first_line_no, len(chunk.lines), trace=tap)

    def apply(self, ticket: Worker | None, name: str) -> Applied:
        if ticket is None:
            return NOTHING
        result = self.pool.collect(ticket)
        self.on_result(result)
        sinks = [result.sinks] if result.sinks else []
        return Applied(result.out, result.lines_out, result.deadletters, sinks)

    def drop(self, ticket: Worker | None) -> None:
        if ticket is not None:
            self.pool.collect(ticket)
