"""With worker processes, the reader commits in the middle of a long file while the
workers route the chunks sent ahead. Pinned deterministically: a crash injected right
after such a commit, then a restart: every line reaches the outbox once, in order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reader_fixtures import Reader

from processors.options import Settings
from store.checkpoints import CheckpointStore
from watcher import pooled, reader
from watcher.workers import WorkerPool, worker_spec


class Crash(Exception):
    """Stands for kill -9 right after a commit."""


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[WorkerPool]:
    keep = {"start": "processors.builtin:keep", "redact": "processors.builtin:redact_secrets"}
    settings = Settings(pipeline=keep)
    made = WorkerPool(worker_spec(settings), 2, poison_after=3, stall_timeout=30.0)
    made.start()
    try:
        yield made
    finally:
        made.stop()


def append(path: Path, first: int, last: int) -> None:
    with open(path, "a") as fh:
        fh.write("".join(f"line {i:06d}\n" for i in range(first, last)))


def checkpoint(root: Path) -> int:
    store = CheckpointStore(root / "var" / "inboxd.db")
    try:
        files, _ = store.load()
        return next(iter(files.values())).offset
    finally:
        store.close()


def test_a_crash_after_a_commit_in_the_middle_of_a_file_loses_and_doubles_nothing(
    tmp_path: Path, pool: WorkerPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pooled, "POOL_CHUNK_BYTES", 4096)
    monkeypatch.setattr(reader, "COMMIT_BYTES", 32 * 1024)
    r = Reader(tmp_path, reader_args={"pool": pool, "on_result": lambda result: None})
    log = r.settings.inbox / "a.log"
    append(log, 0, 1000)
    r.pass_()  # the checkpoint now holds the tail of the first 1,000 lines
    first = log.stat().st_size
    append(log, 1000, 20_000)
    real_commit = CheckpointStore.commit

    def commit(self: CheckpointStore, files: Any, *args: Any, **kwargs: Any) -> None:
        real_commit(self, files, *args, **kwargs)
        if files:
            raise Crash

    monkeypatch.setattr(CheckpointStore, "commit", commit)
    with pytest.raises(Crash):
        r.pass_()
    r.reader.close()
    monkeypatch.undo()
    assert first < checkpoint(tmp_path) < log.stat().st_size, "committed in the middle"
    r.reader = r.open()
    try:
        r.pass_()
    finally:
        r.reader.close()
    assert r.outbox("a.log") == [f"line {i:06d}" for i in range(20_000)]
