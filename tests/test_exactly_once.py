"""The exactly-once order, pinned deterministically, and the engine's timing rules on an
injected clock.

A crash is injected at a chosen point of the commit protocol; then the power is "cut":
every outbox file loses what was written after its last sync. Delivery must still be
exact after a restart. If the checkpoint were committed before the outbox sync, the cut
loses lines; without the start-up cut-back, lines are doubled.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reader_fixtures import Reader, append_lines

from cli.settings import Settings
from processors.pipeline import load_pipeline
from processors.router import Router
from sinks.outbox import Outbox
from store.checkpoints import CheckpointStore
from store.db import connect, transaction
from store.live.telemetry import Telemetry
from watcher.engine import Engine


class Crash(Exception):
    """Stands for kill -9 at the injection point."""


def lines(start: int, stop: int) -> list[str]:
    return [f"line {i:06d}" for i in range(start, stop)]


def inject(monkeypatch: pytest.MonkeyPatch, point: str, durable: dict[str, int]) -> None:
    """Record what each sync made durable; raise Crash at `point` of a checkpoint commit."""
    real_sync, real_commit = Outbox.sync, CheckpointStore.commit

    def sync(self: Outbox) -> list[str]:
        synced = real_sync(self)
        for rel in synced:
            durable[rel] = os.path.getsize(self.target(rel))
        return synced

    def commit(self: CheckpointStore, files: Any, *args: Any, **kwargs: Any) -> None:
        if point == "before-commit" and files:
            raise Crash(point)
        real_commit(self, files, *args, **kwargs)
        if point == "after-commit" and files:
            raise Crash(point)

    monkeypatch.setattr(Outbox, "sync", sync)
    monkeypatch.setattr(CheckpointStore, "commit", commit)


def power_cut(outbox: Path, durable: dict[str, int]) -> None:
    for rel, size in durable.items():
        path = outbox / rel
        if path.stat().st_size > size:
            os.truncate(path, size)


@pytest.mark.parametrize("point", ["before-commit", "after-commit"])
def test_a_crash_at_any_point_of_a_commit_loses_and_doubles_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    r = Reader(tmp_path)
    log = r.settings.inbox / "a.log"
    append_lines(log, lines(0, 1000))
    r.pass_()
    durable: dict[str, int] = {"a.log": (r.settings.outbox / "a.log").stat().st_size}
    inject(monkeypatch, point, durable)
    append_lines(log, lines(1000, 1500))
    with pytest.raises(Crash):
        r.pass_()
    r.reader.outbox.close()
    r.reader.store.close()
    monkeypatch.undo()
    power_cut(r.settings.outbox, durable)
    r.reader = r.open()
    try:
        r.pass_()
        assert r.outbox("a.log") == lines(0, 1500)
    finally:
        r.reader.close()


def test_transaction_raises_the_real_error_when_the_body_ended_the_transaction(
    tmp_path: Path,
) -> None:
    db = connect(tmp_path / "t.db")
    db.execute("CREATE TABLE t (x)")
    with pytest.raises(ValueError, match="the real error"), transaction(db):
        db.execute("INSERT INTO t VALUES (1)")
        db.execute("ROLLBACK")  # as SQLite does itself on some errors (SQLITE_FULL)
        raise ValueError("the real error")
    assert not db.conn.in_transaction
    db.close()


def test_a_failed_commit_leaves_no_transaction_open(tmp_path: Path) -> None:
    db = connect(tmp_path / "t.db")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("CREATE TABLE p (id INTEGER PRIMARY KEY)")
    db.execute("CREATE TABLE c (p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError), transaction(db):
        db.execute("INSERT INTO c VALUES (42)")  # checked only at COMMIT
    assert not db.conn.in_transaction
    assert db.execute("SELECT count(*) FROM c").fetchone()[0] == 0
    db.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[Engine, FakeClock, Settings]]:
    settings = Settings(
        inbox=tmp_path / "inbox", outbox=tmp_path / "outbox", state_dir=tmp_path / "var",
        partial_timeout=5.0, rescan_interval=30.0,
    )  # fmt: skip
    clock = FakeClock()
    pipeline = load_pipeline(
        {"start": "processors.builtin:keep", "redact": "processors.builtin:redact_secrets"}
    )
    e = Engine(settings=settings, router=Router(pipeline), telemetry=Telemetry(), clock=clock)
    yield e, clock, settings
    e._close(commit=True)


def outbox_of(settings: Settings, rel: str) -> list[str]:
    path = settings.outbox / rel
    return path.read_text().splitlines() if path.exists() else []


def test_a_partial_last_line_waits_exactly_partial_timeout(
    engine: tuple[Engine, FakeClock, Settings],
) -> None:
    e, clock, s = engine
    e.step(clock())
    (s.inbox / "x.log").write_text("whole\nhalf")
    e.dirty.mark(str((s.inbox / "x.log").resolve()))
    e.step(clock())
    assert outbox_of(s, "x.log") == ["whole"]
    clock.now += 4.99
    e.step(clock())
    assert outbox_of(s, "x.log") == ["whole"]
    clock.now += 0.02
    e.step(clock())
    assert outbox_of(s, "x.log") == ["whole", "half"]


def test_a_file_fault_is_retried_with_back_off(engine: tuple[Engine, FakeClock, Settings]) -> None:
    e, clock, s = engine
    s.outbox.mkdir(parents=True)
    (s.outbox / "d").write_text("")  # a file where the outbox needs a folder
    (s.inbox / "d").mkdir(parents=True)
    (s.inbox / "d" / "x.log").write_text("one\n")
    e.step(clock())
    assert e.reader is not None
    assert [f.state for f in e.reader.statuses()] == ["error"]
    (s.outbox / "d").unlink()
    clock.now += 0.5
    e.step(clock())  # not due yet (first retry after 1 s) and no event came
    assert outbox_of(s, "d/x.log") == []
    clock.now += 0.6
    e.step(clock())
    assert outbox_of(s, "d/x.log") == ["one"]
