"""With worker processes, the reader commits in the middle of a long file while the
workers route the chunks sent ahead. Pinned deterministically: a crash injected right
after such a commit, then a restart: every line reaches the outbox once, in order."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reader_fixtures import Reader, passthrough_pool

from sinks.outbox import Outbox
from store.checkpoints import CheckpointStore
from watcher.reading import reader
from watcher.reading.faults import SharedFault
from watcher.workers import pooled
from watcher.workers.pool import WorkerPool


class Crash(Exception):
    """Stands for kill -9 right after a commit."""


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[WorkerPool]:
    with passthrough_pool(2) as made:
        yield made


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


def midway_reader(tmp_path: Path, pool: WorkerPool, monkeypatch: pytest.MonkeyPatch) -> Reader:
    """A reader over `pool` with small chunks, so that a commit falls due mid-file."""
    monkeypatch.setattr(pooled, "POOL_CHUNK_BYTES", 4096)
    monkeypatch.setattr(reader, "COMMIT_BYTES", 32 * 1024)
    return Reader(tmp_path, pool=pool, on_result=lambda result: None)


def restart_and_read(r: Reader) -> None:
    """A new reader from the checkpoints, as the daemon's restart or pause makes, over
    the same workers; it reads what is left."""
    r.reader = r.open()
    try:
        r.pass_()
    finally:
        r.reader.close()


def test_a_crash_after_a_commit_in_the_middle_of_a_file_loses_and_doubles_nothing(
    tmp_path: Path, pool: WorkerPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = midway_reader(tmp_path, pool, monkeypatch)
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
    restart_and_read(r)
    assert r.outbox("a.log") == [f"line {i:06d}" for i in range(20_000)]


@pytest.mark.parametrize("where", ["outbox sync", "checkpoint commit"])
def test_a_commit_in_the_middle_of_a_file_that_fails_loses_and_doubles_nothing(
    tmp_path: Path, pool: WorkerPool, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A full disk at the outbox's fsync, or a database locked by another program, at
    the commit made while the workers hold chunks sent ahead: the engine's pause drops
    the reader and opens a new one over the same workers, which give back the results
    still owed to the old one first."""
    r = midway_reader(tmp_path, pool, monkeypatch)
    log = r.settings.inbox / "a.log"
    append(log, 0, 20_000)
    fails = [0]
    real_commit = CheckpointStore.commit

    def full_disk(self: Outbox) -> list[str]:
        fails[0] += 1
        raise OSError(errno.ENOSPC, "No space left on device")

    def locked(self: CheckpointStore, files: Any, *args: Any, **kwargs: Any) -> None:
        if not files:  # a fresh outbox file's identity, made durable before it is written
            return real_commit(self, files, *args, **kwargs)
        fails[0] += 1
        raise sqlite3.OperationalError("database is locked")

    if where == "outbox sync":
        monkeypatch.setattr(Outbox, "sync", full_disk)
    else:
        monkeypatch.setattr(CheckpointStore, "commit", locked)
    with pytest.raises(SharedFault) as failed:
        r.pass_()
    assert fails[0] == 1
    assert any(entry.name == "_commit_midway" for entry in failed.traceback), "failed midway"
    monkeypatch.undo()
    r.reader.close()
    restart_and_read(r)
    assert r.outbox("a.log") == [f"line {i:06d}" for i in range(20_000)]
    assert all(not w.pending for w in pool.workers), "the workers' queues are in step"
