"""The sinks' part of the commit protocol, pinned deterministically: a crash injected
between a sqlite sink's own commit and the checkpoint's, or after the checkpoint, then a
restart: every sink holds each line once."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from reader_fixtures import Reader

from sinks.file import FileSpec
from sinks.http import HttpSpec
from sinks.sqlite import SqliteSpec
from store.checkpoints import CheckpointStore
from watcher.reading.routing import Routing

SPECS = (
    FileSpec("alerts", "file", path="alerts/{file}"),
    SqliteSpec("rows", "sqlite", path="rows.db", table="lines"),
    HttpSpec("hook", "http", url="http://127.0.0.1:9/"),
)


class Crash(Exception):
    """Stands for kill -9 at the injection point."""


class SinkReader(Reader):
    """Every line goes to the outbox; every third to each sink."""

    def route(self, lines: list[str], file: str, first: int) -> Routing:
        picked = [(first + i, x) for i, x in enumerate(lines) if (first + i) % 3 == 0]
        numbers, texts = [n for n, _ in picked], [x for _, x in picked]
        names = ("alerts", "rows", "hook")
        sinks = {name: (list(numbers), list(texts)) for name in names} if picked else {}
        return list(lines), [], sinks


def rows(root: Path) -> list[tuple[str, int, str]]:
    with sqlite3.connect(root / "var" / "rows.db") as conn:
        return [tuple(r) for r in conn.execute("SELECT file, line_no, line FROM lines")]


def spooled(root: Path) -> list[tuple[str, int, str]]:
    with sqlite3.connect(root / "var" / "inboxd.db") as conn:
        return [tuple(r) for r in conn.execute("SELECT file, line_no, line FROM spool")]


def append(path: Path, first: int, last: int) -> None:
    with open(path, "a") as fh:
        fh.write("".join(f"line {i}\n" for i in range(first, last)))


def restart_after_crash(r: SinkReader, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop the crashed reader, put the real commit back, read everything again."""
    r.reader.close()
    monkeypatch.undo()
    r.reader = r.open()
    try:
        r.pass_()
    finally:
        r.reader.close()


@pytest.mark.parametrize("point", ["before-commit", "after-commit"])
def test_a_crash_around_the_checkpoint_leaves_each_sink_line_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    r = SinkReader(tmp_path, sinks=SPECS)
    log = r.settings.inbox / "a.log"
    append(log, 1, 301)
    r.pass_()
    real_commit = CheckpointStore.commit

    def commit(self: CheckpointStore, files: Any, *args: Any, **kwargs: Any) -> None:
        if point == "before-commit" and files:
            raise Crash(point)  # the sqlite sink committed its rows already
        real_commit(self, files, *args, **kwargs)
        if point == "after-commit" and files:
            raise Crash(point)

    monkeypatch.setattr(CheckpointStore, "commit", commit)
    append(log, 301, 601)
    with pytest.raises(Crash):
        r.pass_()
    if point == "before-commit":
        assert len(rows(tmp_path)) == 200, "the crash must come after the sink's own commit"
    restart_after_crash(r, monkeypatch)
    want = [("a.log", n, f"line {n}") for n in range(1, 601) if n % 3 == 0]
    assert sorted(rows(tmp_path), key=lambda x: x[1]) == want
    assert sorted(spooled(tmp_path), key=lambda x: x[1]) == want
    alerts = (tmp_path / "outbox" / "alerts" / "a.log").read_text().splitlines()
    assert alerts == [w[2] for w in want]
    assert r.outbox("a.log") == [f"line {n}" for n in range(1, 601)]


def test_a_replaced_sink_database_is_not_cut_back(tmp_path: Path) -> None:
    """A sink database swapped for an empty one keeps what it gets from then on."""
    r = SinkReader(tmp_path, sinks=SPECS)
    append(r.settings.inbox / "a.log", 1, 301)
    r.pass_()
    r.reader.close()
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / "var" / f"rows.db{suffix}").unlink(missing_ok=True)
    r.reader = r.open()
    try:
        append(r.settings.inbox / "a.log", 301, 331)
        r.pass_()
    finally:
        r.reader.close()
    assert [x[1] for x in rows(tmp_path)] == list(range(303, 331, 3))


def test_a_name_that_is_not_utf8_reaches_every_sink(tmp_path: Path) -> None:
    """The file sink gets the input's own bytes as its name; rows and the spool show it
    escaped, as the API does."""
    r = SinkReader(tmp_path, sinks=SPECS)
    raw = os.fsencode(r.settings.inbox) + b"/bad\xffname.log"
    with open(raw, "w") as fh:
        fh.write("".join(f"line {i}\n" for i in range(1, 7)))
    try:
        r.pass_()
    finally:
        r.reader.close()
    alerts = os.fsencode(tmp_path / "outbox" / "alerts") + b"/bad\xffname.log"
    with open(alerts) as fh:
        assert fh.read().splitlines() == ["line 3", "line 6"]
    assert rows(tmp_path) == [("bad\\xffname.log", 3, "line 3"), ("bad\\xffname.log", 6, "line 6")]
    assert [x[0] for x in spooled(tmp_path)] == ["bad\\xffname.log"] * 2


def test_sink_lines_are_spooled_only_with_the_checkpoint_that_covers_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New files in one pass: each fresh outbox file commits its identity on its own,
    before the checkpoints; the http spool must not ride along in those small commits
    (a crash before the checkpoint would then leave lines spooled that are read again)."""
    r = SinkReader(tmp_path, sinks=SPECS)
    for name in ("a.log", "b.log", "c.log"):
        append(r.settings.inbox / name, 1, 31)
    real_commit = CheckpointStore.commit

    def commit(self: CheckpointStore, files: Any, *args: Any, **kwargs: Any) -> None:
        if files:
            raise Crash("before the checkpoint")
        real_commit(self, files, *args, **kwargs)

    monkeypatch.setattr(CheckpointStore, "commit", commit)
    with pytest.raises(Crash):
        r.pass_()
    assert spooled(tmp_path) == [], "sink lines committed ahead of their checkpoint"
    restart_after_crash(r, monkeypatch)
    want = sorted((f, n, f"line {n}") for f in ("a.log", "b.log", "c.log")
                  for n in range(1, 31) if n % 3 == 0)  # fmt: skip
    assert sorted(spooled(tmp_path)) == want
