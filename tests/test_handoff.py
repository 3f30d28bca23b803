"""One chunk loop for both ways of routing: routing in the processing thread and in
worker processes read the same chunks of a file and move its checkpoint the same way,
to the end of each chunk in the order read, only once that chunk's results are applied.
Reading itself never imports the workers: whoever builds the reader picks the hand-off.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reader_fixtures import Reader, passthrough_pool

from store.checkpoints import TrackedFile
from watcher.reading.handoff import Applied, Handoff, InlineHandoff
from watcher.reading.multiline import Records
from watcher.reading.tailer import Chunk
from watcher.workers.pool import WorkerPool
from watcher.workers.pooled import PooledHandoff

REPO = Path(__file__).resolve().parent.parent
CHUNK_BYTES = 1024


class Recording:
    """A hand-off around another that notes every submit and every apply, with where
    the file's checkpoint stood when the chunk was applied."""

    def __init__(self, inner: Handoff[Any], files: dict[tuple[int, int], TrackedFile]) -> None:
        self.inner = inner
        self.files = files
        self.events: list[tuple[str, int, int]] = []  # (what, chunk end, checkpoint)
        self.in_flight = 0
        self.most_in_flight = 0

    @property
    def window(self) -> int:
        return self.inner.window

    @property
    def chunk_bytes(self) -> int:
        return CHUNK_BYTES  # the same chunks for both hand-offs

    @property
    def decodes(self) -> bool:
        return self.inner.decodes

    def checkpoint(self) -> int:
        return next(iter(self.files.values())).offset

    def submit(
        self, chunk: Chunk, records: Records | None, key: tuple[int, int], name: str
    ) -> tuple[Any, int]:
        self.events.append(("submit", chunk.end_offset, self.checkpoint()))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        return self.inner.submit(chunk, records, key, name), chunk.end_offset

    def apply(self, ticket: tuple[Any, int], name: str) -> Applied:
        inner, end = ticket
        self.events.append(("apply", end, self.checkpoint()))
        self.in_flight -= 1
        return self.inner.apply(inner, name)

    def drop(self, ticket: tuple[Any, int]) -> None:
        self.inner.drop(ticket[0])


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    with passthrough_pool(2) as made:
        yield made


def read_through(root: Path, make: Any) -> tuple[Recording, list[str]]:
    """Read one file of 2,000 lines through the hand-off `make(reader)` builds."""
    r = Reader(root)
    try:
        text = [f"line {i:05d} {'y' * (i % 30)}" for i in range(2000)]
        (r.settings.inbox / "a.log").write_text("".join(t + "\n" for t in text))
        recording = Recording(make(r), r.reader.files)
        r.reader.writer.handoff = recording
        r.pass_()
        assert r.outbox("a.log") == text
        return recording, r.outbox("a.log")
    finally:
        r.reader.close()


def checkpoint_moves(recording: Recording) -> list[tuple[int, int]]:
    """(checkpoint before, chunk end) of every chunk applied, in order."""
    return [(at, end) for what, end, at in recording.events if what == "apply"]


def test_both_hand_offs_go_through_the_one_chunk_loop(tmp_path: Path, pool: WorkerPool) -> None:
    inline, out_inline = read_through(tmp_path / "inline", lambda r: InlineHandoff(r.route, None))
    pooled, out_pooled = read_through(
        tmp_path / "pooled", lambda r: PooledHandoff(pool, r.telemetry, lambda result: None)
    )
    assert out_inline == out_pooled
    ends = [end for what, end, _ in inline.events if what == "submit"]
    assert len(ends) > 20, "dozens of chunks"
    assert ends == [end for what, end, _ in pooled.events if what == "submit"], "same chunks"
    # The checkpoint moves to the end of each chunk in the order read, once applied.
    moves = list(zip([0, *ends[:-1]], ends, strict=True))
    assert checkpoint_moves(inline) == moves
    assert checkpoint_moves(pooled) == moves
    # In this thread a chunk is applied before the next is read; the workers route a
    # window of chunks ahead, the checkpoint still at the last one applied.
    assert inline.most_in_flight == 1
    assert pooled.most_in_flight == pool.window
    assert all(at < end for what, end, at in pooled.events if what == "submit")


def test_reading_never_imports_the_workers() -> None:
    wrong = []
    for path in sorted((REPO / "watcher" / "reading").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            wrong += [f"{path.name}: {n}" for n in names if n.startswith("watcher.workers")]
    assert not wrong, f"watcher/reading imports the workers: {wrong}"
