"""The http sink's sender against a real loopback receiver and a real state database."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from http_receiver import Receiver, Request
from net_fixtures import free_port, wait_for

from processors.options import VERSION
from store import spool
from store.db import connect, ensure_schema, transaction
from store.health import DEGRADED, OK, HealthBoard
from store.sinkboard import SinkBoard
from store.sinkconf import SinkSpec
from watcher import httpsink
from watcher.httpsink import IDLE_POLL_S, HttpSender, backoff_s, retry_after_s

REPO = Path(__file__).resolve().parent.parent
INSTANCE = "0123456789abcdef"
SINK = "hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "var" / "inboxd.db"
    db = connect(path)
    ensure_schema(db)
    db.conn.execute("INSERT INTO meta (key, value) VALUES ('instance', ?)", (INSTANCE,))
    db.close()
    return path


class Parts(NamedTuple):
    board: SinkBoard
    health: HealthBoard


@pytest.fixture
def made() -> Iterator[list[HttpSender]]:
    senders: list[HttpSender] = []
    yield senders
    for s in senders:
        s.stop()
        s.join(5)
        if not s.is_alive():
            s.close()


def make(made: list[HttpSender], db_path: Path, url: str, **spec: Any) -> tuple[HttpSender, Parts]:
    opts = {"batch": 5, "timeout": 2.0, "max_pending": 1000} | spec
    sink = SinkSpec(SINK, "http", url=url, **opts)
    health = HealthBoard()
    board = SinkBoard((sink,), health)
    sender = HttpSender(sink, board, db_path, jitter=lambda: 0.5, busy_timeout_ms=200)
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


def run_until_idle(sender: HttpSender, now: float = 0.0, limit: int = 50) -> float:
    """Steps on a made-up clock: each wait is skipped by moving the clock on."""
    for _ in range(limit):
        delay = sender.step(now)
        if sender.idle:
            return now
        now += delay
    pytest.fail("the spool did not empty")


def figures(parts: Parts) -> dict[str, Any]:
    return parts.board.snapshot()[0]


# -- the spool --------------------------------------------------------------------------


def test_spool_lines_writes_in_order_inside_the_callers_transaction(db_path: Path) -> None:
    db = connect(db_path)
    rows = [("a.log", 1, "one"), ("a.log", 2, "bad \udcff here"), ("b\udcfe.log", None, "three")]
    with transaction(db):
        assert spool.spool_lines(db.conn, SINK, rows) == 3
    got = [r[2:] for r in spooled(db_path)]
    assert got == [("a.log", 1, "one"), ("a.log", 2, "bad \\udcff here"),
                   ("b\\udcfe.log", None, "three")]  # fmt: skip
    # Neither begins nor commits: the caller's rollback takes the lines back.
    db.conn.execute("BEGIN IMMEDIATE")
    spool.spool_lines(db, "other", [("c.log", 1, "x"), ("c.log", 2, "\ud800")])
    db.conn.execute("ROLLBACK")
    assert len(spooled(db_path)) == 3
    db.close()


# -- batches and the body ----------------------------------------------------------------


def test_batches_of_batch_lines_in_id_order_as_ndjson(
    made: list[HttpSender], db_path: Path, receiver: Receiver
) -> None:
    add_lines(db_path, 12)
    add_lines(db_path, 2, sink="elsewhere")
    mine = (("Authorization", "Bearer t"), ("idempotency-key", "mine"), ("user-agent", "mine"))
    sender, parts = make(made, db_path, receiver.url, headers=mine)
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
    assert [r[1] for r in spooled(db_path)] == ["elsewhere", "elsewhere"]
    assert recorded(db_path) == []
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
    made: list[HttpSender], db_path: Path, receiver: Receiver
) -> None:
    add_lines(db_path, 7)
    receiver.plan = [("status", 503, {"Retry-After": "60"})]
    sender, parts = make(made, db_path, receiver.url, max_pending=7)
    sender.start()
    assert figures(parts)["pending"] == 7  # before the processing thread may spool more


def test_user_agent_and_pending_figures(
    made: list[HttpSender], db_path: Path, receiver: Receiver
) -> None:
    add_lines(db_path, 7)
    sender, parts = make(made, db_path, receiver.url, max_pending=7)
    sender.step(0.0)
    assert receiver.requests[0].headers["User-Agent"] == f"inboxd/{VERSION}"
    assert figures(parts)["pending"] == 2 and figures(parts)["lines"] == 5
    assert parts.board.blocked() is None
    add_lines(db_path, 5, start=8)
    parts.board.add_pending(SINK, 5)  # as the processing thread does after its commit
    assert parts.board.blocked() == f"sink {SINK} has 7 lines waiting (max_pending 7)"


def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_shown(
    made: list[HttpSender], db_path: Path, receiver: Receiver
) -> None:
    add_lines(db_path, 2)
    url = receiver.url.replace("http://", "http://ops:p%40ss@") + "&token=t0p"
    sender, parts = make(made, db_path, url)
    sender.step(0.0)
    assert receiver.requests[0].headers["Authorization"] == "Basic b3BzOnBAc3M="  # ops:p@ss
    target = parts.board.snapshot()[0]["target"]
    assert "p%40ss" not in target and "t0p" not in target
    assert "http://ops:***@127.0.0.1:" in target and "token=***" in target


# -- failures and retries -------------------------------------------------------------------


def test_failures_then_recovery_deliver_every_line_once_per_key(
    made: list[HttpSender], db_path: Path, receiver: Receiver
) -> None:
    add_lines(db_path, 13)
    receiver.plan = [("drop",), ("status", 503, {}), ("status", 500, {}), ("status", 400, {}),
                     ("sleep", 2.0), ("status", 200, {}), ("status", 502, {})]  # fmt: skip
    sender, parts = make(made, db_path, receiver.url, timeout=0.3)
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
    made: list[HttpSender], db_path: Path, receiver: Receiver
) -> None:
    add_lines(db_path, 3)
    receiver.plan = [("status", 503, {})]
    sender, parts = make(made, db_path, receiver.url)
    sender._prime_now()
    sender.step(0.0)
    f = figures(parts)
    assert (f["status"], f["reason"], f["errors"], f["pending"], f["lines"]) == (
        DEGRADED, "HTTP 503 Service Unavailable", 1, 3, 0)  # fmt: skip
    assert parts.board.blocked() == f"sink {SINK} is failing: HTTP 503 Service Unavailable"
    assert parts.health.status_of("sinks") == DEGRADED
    assert recorded(db_path)[0][1:3] == (1, 3)  # recorded before the POST, kept after it
    run_until_idle(sender, 10.0)
    assert parts.board.blocked() is None and parts.health.status_of("sinks") == OK


def test_connection_refused_is_a_failure_with_its_reason(
    made: list[HttpSender], db_path: Path
) -> None:
    add_lines(db_path, 2)
    sender, parts = make(made, db_path, f"http://127.0.0.1:{free_port()}/")
    delay = sender.step(0.0)
    assert figures(parts)["reason"].startswith("ConnectionRefusedError: ")
    assert delay == pytest.approx(0.5)
    assert len(spooled(db_path)) == 2


def test_a_kept_alive_connection_closed_by_the_receiver_is_reopened(
    made: list[HttpSender], db_path: Path, receiver: Receiver
) -> None:
    add_lines(db_path, 10)
    receiver.plan = [("status", 200, {}), ("drop",)]
    sender, parts = make(made, db_path, receiver.url)
    assert sender.step(0.0) == 0.0
    assert sender.step(0.0) == 0.0  # dropped on the old connection, sent on a new one
    assert figures(parts)["errors"] == 0 and figures(parts)["lines"] == 10
    assert [r.key for r in receiver.requests][1] == receiver.requests[2].key


def test_retry_after_is_honoured_and_capped(
    made: list[HttpSender], db_path: Path, receiver: Receiver
) -> None:
    add_lines(db_path, 3)
    receiver.plan = [("status", 503, {"Retry-After": "7"}),
                     ("status", 429, {"Retry-After": "100000"}),
                     ("status", 500, {"Retry-After": "9"})]  # fmt: skip
    sender, _ = make(made, db_path, receiver.url)
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


# -- crashes ------------------------------------------------------------------------------


def test_a_recorded_batch_is_sent_first_with_its_key(
    made: list[HttpSender], db_path: Path, receiver: Receiver
) -> None:
    """The state a crash leaves: a batch recorded (of another batch size), not acknowledged."""
    add_lines(db_path, 10)
    db = connect(db_path)
    taken = spool.take_batch(db, SINK, 4, "another-key-source")
    db.close()
    assert taken is not None
    old = taken[0]
    sender, _ = make(made, db_path, receiver.url, batch=5)
    run_until_idle(sender)
    assert receiver.requests[0].key == old.key
    assert [lines_of(r) for r in receiver.requests] == [
        [f"line {i}" for i in range(1, 5)],
        [f"line {i}" for i in range(5, 10)],
        ["line 10"],
    ]


_CRASHING = """
import sys
from pathlib import Path
from store.sinkboard import SinkBoard
from store.sinkconf import SinkSpec
from watcher.httpsink import HttpSender
spec = SinkSpec("hook", "http", url=sys.argv[2], batch=5, timeout=30.0)
HttpSender(spec, SinkBoard((spec,)), Path(sys.argv[1])).step(0.0)
"""


def test_killed_mid_post_the_next_sender_resends_the_same_batch(
    made: list[HttpSender], db_path: Path, receiver: Receiver
) -> None:
    add_lines(db_path, 8)
    receiver.plan = [("hold",)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _CRASHING, str(db_path), receiver.url],
                            env=env, cwd=REPO)  # fmt: skip
    try:
        wait_for(lambda: receiver.got(1) or proc.poll() is not None, 20, "the first POST")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert receiver.got(1), "the subprocess ended before posting"
    held = receiver.requests[0]
    sender, parts = make(made, db_path, receiver.url, batch=3)
    sender.step(0.0)
    assert receiver.requests[1] == held._replace(headers=receiver.requests[1].headers)
    run_until_idle(sender)
    receiver.check_keys()
    assert [x for r in receiver.accepted for x in lines_of(r)] == [f"line {i}" for i in
                                                                   range(1, 9)]  # fmt: skip
    assert figures(parts)["lines"] == 8


# -- the database -------------------------------------------------------------------------


def step_while_locked(sender: HttpSender, db_path: Path, now: float) -> float:
    """One step while another program holds the database's write lock."""
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        return sender.step(now)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_locked_database_is_a_failure_then_delivers(
    made: list[HttpSender], db_path: Path, receiver: Receiver
) -> None:
    add_lines(db_path, 3)
    sender, parts = make(made, db_path, receiver.url)
    delay = step_while_locked(sender, db_path, 0.0)
    assert figures(parts)["reason"] == "database: database is locked"
    assert receiver.requests == [] and delay > 0
    sender.step(delay)
    assert figures(parts)["lines"] == 3 and figures(parts)["status"] == OK
    # A fault with nothing to send clears too, once the spool can be read again.
    delay = step_while_locked(sender, db_path, 10.0)
    assert parts.board.blocked() == f"sink {SINK} is failing: database: database is locked"
    sender.step(10.0 + delay)
    assert sender.idle and parts.board.blocked() is None
    assert parts.health.status_of("sinks") == OK


# -- the thread ---------------------------------------------------------------------------


def test_the_thread_delivers_when_nudged(
    made: list[HttpSender], db_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(httpsink, "IDLE_POLL_S", 60.0)  # only a nudge can wake it in time
    sender, parts = make(made, db_path, receiver.url)
    sender.start()
    sender.start()
    wait_for(lambda: sender.idle, 5, "an idle sender")
    add_lines(db_path, 7)
    sender.nudge()
    wait_for(lambda: figures(parts)["lines"] == 7, 5, "delivery after a nudge")
    wait_for(lambda: sender.idle, 5, "an idle sender")
    steps = sender.steps
    threading.Event().wait(0.3)
    assert sender.steps - steps <= 1  # asleep until the next nudge, not spinning
    sender.stop()
    sender.stop()
    sender.join(5)
    assert not sender.is_alive() and sender.error is None


def test_stop_is_prompt_during_backoff(
    made: list[HttpSender], db_path: Path, receiver: Receiver
) -> None:
    add_lines(db_path, 3)
    receiver.plan = [("status", 503, {"Retry-After": "60"})]
    sender, parts = make(made, db_path, receiver.url)
    sender.start()
    wait_for(lambda: figures(parts)["errors"] == 1, 5, "a failure")
    started = time.monotonic()
    sender.stop()
    sender.join(5)
    assert not sender.is_alive() and time.monotonic() - started < 1.0
    assert len(spooled(db_path)) == 3


def test_stop_during_a_slow_post_waits_at_most_the_timeout(
    made: list[HttpSender], db_path: Path, receiver: Receiver
) -> None:
    add_lines(db_path, 3)
    receiver.plan = [("sleep", 30)]
    sender, _ = make(made, db_path, receiver.url, timeout=0.5)
    sender.start()
    wait_for(lambda: receiver.got(1), 5, "the POST")
    started = time.monotonic()
    sender.stop()
    sender.join(5)
    assert not sender.is_alive() and time.monotonic() - started < 1.5
    assert len(spooled(db_path)) == 3 and len(recorded(db_path)) == 1


def test_a_bug_in_the_thread_is_visible(
    made: list[HttpSender], db_path: Path, receiver: Receiver
) -> None:
    sender, _ = make(made, db_path, receiver.url)
    sender.start()
    wait_for(lambda: sender.idle, 5, "an idle sender")
    db = connect(db_path)
    db.conn.execute("DROP TABLE spool_batches")
    db.close()
    sender.nudge()
    wait_for(lambda: not sender.is_alive(), 5, "the thread's end")
    assert isinstance(sender.error, sqlite3.OperationalError)


# -- --once ---------------------------------------------------------------------------------


def test_drain_empties_the_spool_or_gives_up(
    made: list[HttpSender], db_path: Path, receiver: Receiver
) -> None:
    add_lines(db_path, 12)
    sender, parts = make(made, db_path, receiver.url)
    assert sender.drain(5.0) is True
    assert spooled(db_path) == [] and figures(parts)["lines"] == 12
    add_lines(db_path, 4, start=13)
    receiver.plan = [("status", 503, {"Retry-After": "30"})] * 100
    again, _ = make(made, db_path, receiver.url)
    started = time.monotonic()
    assert again.drain(1.0) is False
    assert 0.9 < time.monotonic() - started < 1.8
    assert len(spooled(db_path)) == 4 and len(recorded(db_path)) == 1
