"""Helpers of the http sink's sender tests; tests/conftest.py makes fixtures of the
first three: a real loopback receiver, a real state database, senders stopped at the
end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from http_receiver import Receiver, Request

from cli.settings import VERSION
from sinks import spool
from sinks.http import HttpSpec, http_sender
from sinks.sender import SpoolSender
from store.db import connect, ensure_schema, transaction
from store.live.health import HealthBoard
from store.live.sinkboard import SinkBoard

REPO = Path(__file__).resolve().parent.parent
INSTANCE = "0123456789abcdef"
SINK = "hook"


def receiver_factory() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def spool_database(tmp_path: Path) -> Path:
    path = tmp_path / "var" / "inboxd.db"
    db = connect(path)
    ensure_schema(db)
    db.conn.execute("INSERT INTO meta (key, value) VALUES ('instance', ?)", (INSTANCE,))
    db.close()
    return path


class Parts(NamedTuple):
    board: SinkBoard
    health: HealthBoard


def senders_made() -> Iterator[list[SpoolSender]]:
    senders: list[SpoolSender] = []
    yield senders
    for s in senders:
        s.stop()
        s.join(5)
        if not s.is_alive():
            s.close()


def make(
    made: list[SpoolSender], db_path: Path, url: str, **spec: Any
) -> tuple[SpoolSender, Parts]:
    opts = {"batch": 5, "timeout": 2.0, "pending_limit": 1000} | spec
    sink = HttpSpec(SINK, "http", url=url, **opts)
    health = HealthBoard()
    board = SinkBoard((sink,), health)
    sender = http_sender(
        sink, board, db_path, version=VERSION, jitter=lambda: 0.5, busy_timeout_ms=200
    )
    made.append(sender)
    return sender, Parts(board, health)


def add_lines(db_path: Path, n: int, start: int = 1, sink: str = SINK) -> None:
    db = connect(db_path)
    with transaction(db):
        spool.spool_lines(db.conn, sink, [(f"app/{i % 3}.log", i, f"line {i}") for i in
                                         range(start, start + n)])  # fmt: skip
    db.close()


def query(db_path: Path, sql: str) -> list[tuple[Any, ...]]:
    db = connect(db_path)
    try:
        return list(db.conn.execute(sql))
    finally:
        db.close()


def spooled(db_path: Path) -> list[tuple[Any, ...]]:
    return query(db_path, "SELECT id, sink, file, line_no, line FROM spool ORDER BY id")


def recorded(db_path: Path) -> list[tuple[Any, ...]]:
    return query(db_path, "SELECT sink, first_id, last_id, key FROM spool_batches")


def lines_of(req: Request) -> list[str]:
    return [json.loads(x)["line"] for x in req.body.decode().splitlines()]


def run_until_idle(sender: SpoolSender, now: float = 0.0, limit: int = 50) -> float:
    """Steps on a made-up clock: each wait is skipped by moving the clock on."""
    for _ in range(limit):
        delay = sender.step(now)
        if sender.idle:
            return now
        now += delay
    pytest.fail("the spool did not empty")


def figures(parts: Parts) -> dict[str, Any]:
    return parts.board.snapshot()[0]
