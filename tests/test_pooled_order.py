"""With worker processes, results come back in the order the chunks were read: a file
cut into dozens of small chunks, with a full window of them in flight, reaches the
outbox line for line in input order, and its checkpoint ends at the last chunk read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from reader_fixtures import Reader, passthrough_pool

from watcher.workers import pooled
from watcher.workers.child import Result
from watcher.workers.pool import WorkerPool


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    with passthrough_pool(2) as made:
        yield made


def lines(first: int, last: int) -> list[str]:
    return [f"line {i:05d} {'x' * (i % 40)}" for i in range(first, last)]


def write(path: Path, text: list[str]) -> None:
    with open(path, "a") as fh:
        fh.write("".join(t + "\n" for t in text))


@pytest.mark.parametrize("count", [3000, 3001, 3002, 3003])
def test_small_chunks_reach_the_outbox_in_input_order(
    tmp_path: Path, pool: WorkerPool, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    """`count` varies how many chunks are still in flight when the file ends."""
    monkeypatch.setattr(pooled, "POOL_CHUNK_BYTES", 1024)  # ~80 chunks, window of 4
    results: list[Result] = []
    r = Reader(tmp_path, pool=pool, on_result=results.append)
    try:
        log = r.settings.inbox / "a.log"
        write(log, lines(0, count))
        r.pass_()
        assert len(results) > 50 and not r.routed, "dozens of chunks, routed by the workers"
        assert r.outbox("a.log") == lines(0, count)
        tracked = next(iter(r.reader.files.values()))
        assert (tracked.offset, tracked.lines) == (log.stat().st_size, count)
        write(log, lines(count, count + 500))  # read from the checkpoint: nothing doubled
        r.pass_()
        assert r.outbox("a.log") == lines(0, count + 500)
    finally:
        r.reader.close()
    assert all(not w.pending for w in pool.workers), "the workers' queues are in step"
