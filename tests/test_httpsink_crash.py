"""The http sink's sender across crashes, as a thread, and for --once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from http_receiver import Receiver
from net_fixtures import wait_for
from sender_fixtures import (
    SINK,
    add_lines,
    figures,
    lines_of,
    make,
    recorded,
    run_until_idle,
    spooled,
)

from sinks import sender as sendermod
from sinks import spool
from sinks.sender import SpoolSender
from store.db import connect

REPO = Path(__file__).resolve().parent.parent


# -- crashes ------------------------------------------------------------------------------


def test_a_recorded_batch_is_sent_first_with_its_key(
    made: list[SpoolSender], spool_db: Path, receiver: Receiver
) -> None:
    """The state a crash leaves: a batch recorded (of another batch size), not acknowledged."""
    add_lines(spool_db, 10)
    db = connect(spool_db)
    taken = spool.take_batch(db, SINK, 4, "another-key-source")
    db.close()
    assert taken is not None
    old = taken[0]
    sender, _ = make(made, spool_db, receiver.url, batch=5)
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
from store.live.sinkboard import SinkBoard
from sinks.http import HttpSpec
from sinks.http import http_sender
from sinks.sender import SpoolSender
spec = HttpSpec("hook", "http", url=sys.argv[2], batch=5, timeout=30.0)
http_sender(spec, SinkBoard((spec,)), Path(sys.argv[1])).step(0.0)
"""


def test_killed_mid_post_the_next_sender_resends_the_same_batch(
    made: list[SpoolSender], spool_db: Path, receiver: Receiver
) -> None:
    add_lines(spool_db, 8)
    receiver.plan = [("hold",)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _CRASHING, str(spool_db), receiver.url],
                            env=env, cwd=REPO)  # fmt: skip
    try:
        wait_for(lambda: receiver.got(1) or proc.poll() is not None, 20, "the first POST")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert receiver.got(1), "the subprocess ended before posting"
    held = receiver.requests[0]
    sender, parts = make(made, spool_db, receiver.url, batch=3)
    sender.step(0.0)
    assert receiver.requests[1] == held._replace(headers=receiver.requests[1].headers)
    run_until_idle(sender)
    receiver.check_keys()
    assert [x for r in receiver.accepted for x in lines_of(r)] == [f"line {i}" for i in
                                                                   range(1, 9)]  # fmt: skip
    assert figures(parts)["lines"] == 8


# -- the thread ---------------------------------------------------------------------------


def test_the_thread_delivers_when_nudged(
    made: list[SpoolSender], spool_db: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sendermod, "IDLE_POLL_S", 60.0)  # only a nudge can wake it in time
    sender, parts = make(made, spool_db, receiver.url)
    sender.start()
    sender.start()
    wait_for(lambda: sender.idle, 5, "an idle sender")
    add_lines(spool_db, 7)
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
    made: list[SpoolSender], spool_db: Path, receiver: Receiver
) -> None:
    add_lines(spool_db, 3)
    receiver.plan = [("status", 503, {"Retry-After": "60"})]
    sender, parts = make(made, spool_db, receiver.url)
    sender.start()
    wait_for(lambda: figures(parts)["errors"] == 1, 5, "a failure")
    started = time.monotonic()
    sender.stop()
    sender.join(5)
    assert not sender.is_alive() and time.monotonic() - started < 1.0
    assert len(spooled(spool_db)) == 3


def test_stop_during_a_slow_post_waits_at_most_the_timeout(
    made: list[SpoolSender], spool_db: Path, receiver: Receiver
) -> None:
    add_lines(spool_db, 3)
    receiver.plan = [("sleep", 30)]
    sender, _ = make(made, spool_db, receiver.url, timeout=0.5)
    sender.start()
    wait_for(lambda: receiver.got(1), 5, "the POST")
    started = time.monotonic()
    sender.stop()
    sender.join(5)
    assert not sender.is_alive() and time.monotonic() - started < 1.5
    assert len(spooled(spool_db)) == 3 and len(recorded(spool_db)) == 1


def test_a_bug_in_the_thread_is_visible(
    made: list[SpoolSender], spool_db: Path, receiver: Receiver
) -> None:
    sender, _ = make(made, spool_db, receiver.url)
    sender.start()
    wait_for(lambda: sender.idle, 5, "an idle sender")
    db = connect(spool_db)
    db.conn.execute("DROP TABLE spool_batches")
    db.close()
    sender.nudge()
    wait_for(lambda: not sender.is_alive(), 5, "the thread's end")
    assert isinstance(sender.error, sqlite3.OperationalError)


# -- --once ---------------------------------------------------------------------------------


def test_drain_empties_the_spool_or_gives_up(
    made: list[SpoolSender], spool_db: Path, receiver: Receiver
) -> None:
    add_lines(spool_db, 12)
    sender, parts = make(made, spool_db, receiver.url)
    assert sender.drain(5.0) is True
    assert spooled(spool_db) == [] and figures(parts)["lines"] == 12
    add_lines(spool_db, 4, start=13)
    receiver.plan = [("status", 503, {"Retry-After": "30"})] * 100
    again, _ = make(made, spool_db, receiver.url)
    started = time.monotonic()
    assert again.drain(1.0) is False
    assert 0.9 < time.monotonic() - started < 1.8
    assert len(spooled(spool_db)) == 4 and len(recorded(spool_db)) == 1
