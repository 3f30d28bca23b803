"""The http sink's sender against a real loopback receiver and a real state database:
the spool, batches and their body, failures and retries, a locked database."""

from __future__ import annotations

import json
import sqlite3
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from http_receiver import Receiver
from net_fixtures import free_port
from sender_fixtures import (
    INSTANCE,
    SINK,
    add_lines,
    figures,
    lines_of,
    make,
    recorded,
    run_until_idle,
    spooled,
)

from cli.settings import VERSION
from sinks import http as httpsink
from sinks import spool
from sinks.http import retry_after_s
from sinks.sender import IDLE_POLL_S, SpoolSender, backoff_s
from store.db import connect, transaction
from store.live.health import DEGRADED, OK

# -- the spool --------------------------------------------------------------------------


def test_spool_lines_writes_in_order_inside_the_callers_transaction(spool_db: Path) -> None:
    db = connect(spool_db)
    rows = [("a.log", 1, "one"), ("a.log", 2, "bad \udcff here"), ("b\udcfe.log", None, "three")]
    with transaction(db):
        assert spool.spool_lines(db.conn, SINK, rows) == 3
    got = [r[2:] for r in spooled(spool_db)]
    assert got == [("a.log", 1, "one"), ("a.log", 2, "bad \\udcff here"),
                   ("b\\udcfe.log", None, "three")]  # fmt: skip
    # Neither begins nor commits: the caller's rollback takes the lines back.
    db.conn.execute("BEGIN IMMEDIATE")
    spool.spool_lines(db, "other", [("c.log", 1, "x"), ("c.log", 2, "\ud800")])
    db.conn.execute("ROLLBACK")
    assert len(spooled(spool_db)) == 3
    db.close()


# -- batches and the body ----------------------------------------------------------------


def test_batches_of_batch_lines_in_id_order_as_ndjson(
    made: list[SpoolSender], spool_db: Path, receiver: Receiver
) -> None:
    add_lines(spool_db, 12)
    add_lines(spool_db, 2, sink="elsewhere")
    mine = (("Authorization", "Bearer t"), ("idempotency-key", "mine"), ("user-agent", "mine"))
    sender, parts = make(made, spool_db, receiver.url, headers=mine)
    assert run_until_idle(sender) == 0.0  # no failure, no wait
    assert [lines_of(r) for r in receiver.requests] == [
        [f"line {i}" for i in range(1, 6)],
        [f"line {i}" for i in range(6, 11)],
        ["line 11", "line 12"],
    ]
    first = receiver.requests[0]
    assert first.body.endswith(b"\n")
    assert json.loads(first.body.splitlines()[1]) == {"file": "app/2.log", "line_no": 2,
                                                      "line": "line 2"}  # fmt: skip
    assert first.headers["Content-Type"] == "application/x-ndjson"
    assert first.headers["Authorization"] == "Bearer t"
    assert first.headers["user-agent"] == "mine"
    assert first.key == spool.batch_key(INSTANCE, SINK, 1, 5)
    assert first.all_keys == [first.key]  # the configured one is not sent
    assert len({r.key for r in receiver.requests}) == 3
    assert [r[1] for r in spooled(spool_db)] == ["elsewhere", "elsewhere"]
    assert recorded(spool_db) == []
    f = figures(parts)
    assert (f["lines"], f["errors"], f["status"]) == (12, 0, OK)
    assert sender.step(0.0) == IDLE_POLL_S and sender.idle


def test_ndjson_body_is_json_whatever_the_row_holds() -> None:
    rows: list[Any] = [
        (1, "a.log", 1, 'say "hi"\\ \t\x00 é ☃'),
        (2, None, None, ""),
        (3, b"odd\xff.log", "7", "x"),  # a row written by hand, not by inboxd
    ]
    docs = [json.loads(x) for x in httpsink.ndjson_body(rows).decode().splitlines()]
    assert docs == [
        {"file": "a.log", "line_no": 1, "line": 'say "hi"\\ \t\x00 é ☃'},
        {"file": None, "line_no": None, "line": ""},
        {"file": "odd\\xff.log", "line_no": "7", "line": "x"},
    ]
    odd: list[Any] = [(4, "b.log", "not 7", "y")]
    body = httpsink.ndjson_body(odd)
    assert json.loads(body) == {"file": "b.log", "line_no": "not 7", "line": "y"}


def test_pending_is_counted_before_start_returns(
    made: list[SpoolSender], spool_db: Path, receiver: Receiver
) -> None:
    add_lines(spool_db, 7)
    receiver.plan = [("status", 503, {"Retry-After": "60"})]
    sender, parts = make(made, spool_db, receiver.url, pending_limit=7)
    sender.start()
    assert figures(parts)["pending"] == 7  # before the processing thread may spool more


def test_user_agent_and_pending_figures(
    made: list[SpoolSender], spool_db: Path, receiver: Receiver
) -> None:
    add_lines(spool_db, 7)
    sender, parts = make(made, spool_db, receiver.url, pending_limit=7)
    sender.step(0.0)
    assert receiver.requests[0].headers["User-Agent"] == f"inboxd/{VERSION}"
    assert figures(parts)["pending"] == 2 and figures(parts)["lines"] == 5
    assert parts.board.blocked() is None
    add_lines(spool_db, 5, start=8)
    parts.board.add_pending(SINK, 5)  # as the processing thread does after its commit
    assert parts.board.blocked() == f"sink {SINK} has 7 lines waiting (max_pending 7)"


def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_shown(
    made: list[SpoolSender], spool_db: Path, receiver: Receiver
) -> None:
    add_lines(spool_db, 2)
    url = receiver.url.replace("http://", "http://ops:p%40ss@") + "&token=t0p"
    sender, parts = make(made, spool_db, url)
    sender.step(0.0)
    assert receiver.requests[0].headers["Authorization"] == "Basic b3BzOnBAc3M="  # ops:p@ss
    target = parts.board.snapshot()[0]["target"]
    assert "p%40ss" not in target and "t0p" not in target
    assert "http://ops:***@127.0.0.1:" in target and "token=***" in target


# -- failures and retries -------------------------------------------------------------------


def test_failures_then_recovery_deliver_every_line_once_per_key(
    made: list[SpoolSender], spool_db: Path, receiver: Receiver
) -> None:
    add_lines(spool_db, 13)
    receiver.plan = [("drop",), ("status", 503, {}), ("status", 500, {}), ("status", 400, {}),
                     ("sleep", 2.0), ("status", 200, {}), ("status", 502, {})]  # fmt: skip
    sender, parts = make(made, spool_db, receiver.url, timeout=0.3)
    now = 0.0
    reasons = []
    for _ in range(40):
        delay = sender.step(now)
        if sender.idle:
            break
        reasons.append(figures(parts)["reason"])
        now += delay
    assert reasons[:5] == ["RemoteDisconnected: Remote end closed connection without response",
                           "HTTP 503 Service Unavailable", "HTTP 500 Internal Server Error",
                           "HTTP 400 Bad Request", "TimeoutError: timed out"]  # fmt: skip
    receiver.check_keys()
    delivered = [line for r in receiver.accepted for line in lines_of(r)]
    assert delivered == [f"line {i}" for i in range(1, 14)]
    # The first batch went six times, all under one key; the one that failed with 502
    # went again under its own.
    keys = [r.key for r in receiver.requests]
    assert keys[:6] == [spool.batch_key(INSTANCE, SINK, 1, 5)] * 6
    assert keys[6] == keys[7] != keys[0]
    f = figures(parts)
    assert (f["lines"], f["errors"], f["pending"], f["status"]) == (13, 6, 0, OK)
    assert parts.health.status_of("sinks") == OK


def test_a_failing_sink_is_degraded_and_blocks_reading(
    made: list[SpoolSender], spool_db: Path, receiver: Receiver
) -> None:
    add_lines(spool_db, 3)
    receiver.plan = [("status", 503, {})]
    sender, parts = make(made, spool_db, receiver.url)
    sender._prime_now()
    sender.step(0.0)
    f = figures(parts)
    assert (f["status"], f["reason"], f["errors"], f["pending"], f["lines"]) == (
        DEGRADED, "HTTP 503 Service Unavailable", 1, 3, 0)  # fmt: skip
    assert parts.board.blocked() == f"sink {SINK} is failing: HTTP 503 Service Unavailable"
    assert parts.health.status_of("sinks") == DEGRADED
    assert recorded(spool_db)[0][1:3] == (1, 3)  # recorded before the POST, kept after it
    run_until_idle(sender, 10.0)
    assert parts.board.blocked() is None and parts.health.status_of("sinks") == OK


def test_connection_refused_is_a_failure_with_its_reason(
    made: list[SpoolSender], spool_db: Path
) -> None:
    add_lines(spool_db, 2)
    sender, parts = make(made, spool_db, f"http://127.0.0.1:{free_port()}/")
    delay = sender.step(0.0)
    assert figures(parts)["reason"].startswith("ConnectionRefusedError: ")
    assert delay == pytest.approx(0.5)
    assert len(spooled(spool_db)) == 2


def test_a_kept_alive_connection_closed_by_the_receiver_is_reopened(
    made: list[SpoolSender], spool_db: Path, receiver: Receiver
) -> None:
    add_lines(spool_db, 10)
    receiver.plan = [("status", 200, {}), ("drop",)]
    sender, parts = make(made, spool_db, receiver.url)
    assert sender.step(0.0) == 0.0
    assert sender.step(0.0) == 0.0  # dropped on the old connection, sent on a new one
    assert figures(parts)["errors"] == 0 and figures(parts)["lines"] == 10
    assert [r.key for r in receiver.requests][1] == receiver.requests[2].key


def test_retry_after_is_honoured_and_capped(
    made: list[SpoolSender], spool_db: Path, receiver: Receiver
) -> None:
    add_lines(spool_db, 3)
    receiver.plan = [("status", 503, {"Retry-After": "7"}),
                     ("status", 429, {"Retry-After": "100000"}),
                     ("status", 500, {"Retry-After": "9"})]  # fmt: skip
    sender, _ = make(made, spool_db, receiver.url)
    assert sender.step(100.0) == pytest.approx(7.0)
    assert sender.step(103.0) == pytest.approx(4.0)  # too early: no request
    assert len(receiver.requests) == 1
    assert sender.step(107.0) == pytest.approx(60.0)
    assert sender.step(167.0) == pytest.approx(2.0)  # a 500's Retry-After is not asked for
    assert sender.step(169.0) == 0.0
    assert len(receiver.requests) == 4


def test_backoff_doubles_to_its_cap_with_jitter() -> None:
    assert [backoff_s(n, 0.5) for n in (1, 2, 3, 4, 7, 50)] == [0.5, 1, 2, 4, 30, 30]
    assert backoff_s(1, 0.0) == pytest.approx(0.4) and backoff_s(1, 1.0) == pytest.approx(0.6)
    assert backoff_s(100, 1.0) == 30
    now = time.time()
    assert retry_after_s(formatdate(now + 20, usegmt=True), now) == pytest.approx(20, abs=1)
    assert retry_after_s("soon", now) is None and retry_after_s("-5", now) == 0.0


# -- the database -------------------------------------------------------------------------


def step_while_locked(sender: SpoolSender, spool_db: Path, now: float) -> float:
    """One step while another program holds the database's write lock."""
    other = sqlite3.connect(spool_db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        return sender.step(now)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_locked_database_is_a_failure_then_delivers(
    made: list[SpoolSender], spool_db: Path, receiver: Receiver
) -> None:
    add_lines(spool_db, 3)
    sender, parts = make(made, spool_db, receiver.url)
    delay = step_while_locked(sender, spool_db, 0.0)
    assert figures(parts)["reason"] == "database: database is locked"
    assert receiver.requests == [] and delay > 0
    sender.step(delay)
    assert figures(parts)["lines"] == 3 and figures(parts)["status"] == OK
    # A fault with nothing to send clears too, once the spool can be read again.
    delay = step_while_locked(sender, spool_db, 10.0)
    assert parts.board.blocked() == f"sink {SINK} is failing: database: database is locked"
    sender.step(10.0 + delay)
    assert sender.idle and parts.board.blocked() is None
    assert parts.health.status_of("sinks") == OK
