"""The nats sink end to end: daemon.py (a subprocess) against a real nats-server with
JetStream, the stream read back with nats-py. Every line is in the stream once, under a
subject naming its host and file; a server that is down pauses reading; a line over the
server's max_payload is a dead letter; `check` names the stream. And, in process: a
batch re-sent after the duplicate window is not stored twice."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import pytest
from daemon_fixtures import (
    REPO,
    Daemon,
    MakeDaemon,
    daemon_env,
    outbox_line_count,
    pause,
    read_outbox,
)
from nats_e2e_fixtures import (
    HOST_TOKEN,
    SINK,
    STREAM,
    assert_once,
    nats_config,
    stream_count,
    stream_messages,
    stream_state,
    write_lines,
)
from nats_fixtures import MakeNatsServer, nats_server_factory
from net_fixtures import free_port, wait_for
from sender_fixtures import INSTANCE, add_lines, spool_database

from sinks import spool
from sinks.base import SenderContext
from sinks.nats import NatsSpec
from sinks.registry import parse_sink
from store.db import connect, transaction
from store.live.sinkboard import SinkBoard
from store.statemark import INSTANCE_KEY


@pytest.fixture
def make_nats(tmp_path: Path) -> Iterator[MakeNatsServer]:
    yield from nats_server_factory(tmp_path)


def run_once(root: Path, conf: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "daemon.py", "--once", "--config", str(conf), "--inbox",
         str(root / "inbox"), "--outbox", str(root / "outbox"), "--state-dir", str(root / "var"),
         *extra],
        cwd=REPO, capture_output=True, text=True, timeout=60, env=daemon_env(),
    )  # fmt: skip


def run_check(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "daemon.py", "check", "--config", str(conf)], cwd=REPO,
                          capture_output=True, text=True, timeout=60, env=daemon_env())  # fmt: skip


def instance_of(state_dir: Path) -> str:
    conn = sqlite3.connect(state_dir / "inboxd.db")
    try:
        query = "SELECT value FROM meta WHERE key = ?"
        return str(conn.execute(query, (INSTANCE_KEY,)).fetchone()[0])
    finally:
        conn.close()


def sinks_check(d: Daemon) -> dict[str, str]:
    check: dict[str, str] = d.get("/health")["checks"]["sinks"]
    return check


@pytest.mark.parametrize("workers", [1, 2])
def test_once_stores_every_line_once_under_its_file_subject(
    tmp_path: Path, make_nats: MakeNatsServer, workers: int
) -> None:
    server = make_nats()
    conf = nats_config(tmp_path / "conf", server.url)
    inbox = tmp_path / "inbox"
    want = {name: write_lines(inbox / name, 0, n) for name, n in
            (("a.log", 1500), ("b.log", 1200), ("sub/c.log", 1300))}  # fmt: skip
    done = run_once(tmp_path, conf, "--workers", str(workers))
    assert done.returncode == 0, done.stderr
    stored = stream_messages(server.url)
    assert_once(stored, [line for lines in want.values() for line in lines])
    subjects = {"a.log": "a_log", "b.log": "b_log", "sub/c.log": "sub.c_log"}
    prefix = f"{instance_of(tmp_path / 'var')}:{SINK}:"
    for m in stored:
        file = m.headers["Inboxd-File"]
        assert m.subject == f"inboxd.{HOST_TOKEN}.{subjects[file]}"
        assert want[file][int(m.headers["Inboxd-Line"]) - 1] == m.line
        assert m.headers["Nats-Msg-Id"].startswith(prefix)
    assert read_outbox(tmp_path / "outbox") == want
    # Nothing new: a second run publishes nothing.
    last = stream_state(server.url)
    assert last is not None
    again = run_once(tmp_path, conf, "--workers", str(workers))
    assert again.returncode == 0, again.stderr
    now = stream_state(server.url)
    assert now is not None and (now.messages, now.last_seq) == (last.messages, last.last_seq)
    assert read_outbox(tmp_path / "outbox") == want


def test_a_server_down_at_start_pauses_reading_until_it_comes(
    tmp_path: Path, make_nats: MakeNatsServer, make_daemon: MakeDaemon
) -> None:
    server = make_nats(start=False)
    conf = nats_config(tmp_path / "conf", server.url, batch=200, max_pending=1000)
    d = make_daemon(config=conf, flush_interval=0.2)
    want = write_lines(d.inbox / "a.log", 0, 300)
    d.start()
    assert "warning" in d.stderr() and "cannot connect" in d.stderr()
    wait_for(lambda: sinks_check(d)["status"] == "degraded", 15, "sinks degraded")
    reason = sinks_check(d)["reason"]
    assert f"sink {SINK}" in reason and "nats" in reason and "cannot connect" in reason
    # What was read before the first failure is spooled; then reading stops.
    wait_for(lambda: d.get("/sinks")[0]["pending"] == outbox_line_count(d.outbox), 10,
             "lines read are spooled")  # fmt: skip
    read = outbox_line_count(d.outbox)
    assert read <= 300
    want += write_lines(d.inbox / "a.log", 300, 3300)
    pause(1.0)  # five flush intervals: reading would have moved on
    assert outbox_line_count(d.outbox) == read
    sink = d.get("/sinks")[0]
    assert (sink["name"], sink["status"], sink["pending"]) == (SINK, "degraded", read)
    assert sink["errors"] >= 1
    server.start()
    wait_for(lambda: stream_count(server.url) >= 3300, 40, "every line in the stream")
    wait_for(lambda: d.get("/sinks")[0]["pending"] == 0, 10, "the spool empty")
    assert sinks_check(d)["status"] == "ok"
    assert d.get("/sinks")[0]["status"] == "ok"
    assert_once(stream_messages(server.url), want)
    assert read_outbox(d.outbox) == {"a.log": want}
    metrics = httpx.get(d.url + "/metrics", timeout=10).text
    assert f'inboxd_sink_lines_total{{sink="{SINK}"}} 3300.0' in metrics
    assert f'inboxd_sink_pending_lines{{sink="{SINK}"}} 0.0' in metrics
    errors = [x for x in metrics.splitlines() if x.startswith("inboxd_sink_errors_total{")]
    assert any(f'sink="{SINK}"' in x and not x.endswith(" 0.0") for x in errors), errors
    d.stop()


def test_a_line_over_max_payload_is_a_dead_letter_and_the_rest_goes_on(
    tmp_path: Path, make_nats: MakeNatsServer, make_daemon: MakeDaemon
) -> None:
    server = make_nats(max_payload=1024)
    d = make_daemon(config=nats_config(tmp_path / "conf", server.url, batch=100),
                    flush_interval=0.2)  # fmt: skip
    path = d.inbox / "a.log"
    want = write_lines(path, 0, 250)
    big = "big " + "y" * 1996
    with path.open("a") as fh:
        fh.write(big + "\n")
    want += write_lines(path, 251, 500)
    d.start()
    wait_for(lambda: stream_count(server.url) >= 499, 20, "the other lines in the stream")
    wait_for(lambda: d.get("/deadletter"), 10, "a dead letter")
    [letter] = d.get("/deadletter")
    assert (letter["file"], letter["line_no"], letter["line"]) == ("a.log", 251, big)
    assert letter["processor"] == f"sink {SINK}" and letter["tag"] == SINK
    assert "1024 bytes" in letter["message"] and "TooLarge" in letter["message"]
    # Not stuck: the sink is ok, and lines written later still arrive.
    more = write_lines(path, 501, 600)
    wait_for(lambda: stream_count(server.url) >= 598, 20, "later lines in the stream")
    wait_for(lambda: d.get("/sinks")[0]["pending"] == 0, 10, "the spool empty")
    assert d.get("/sinks")[0]["status"] == "ok" and sinks_check(d)["status"] == "ok"
    assert_once(stream_messages(server.url), want + more)
    assert read_outbox(d.outbox) == {"a.log": [*want[:250], big, *want[250:], *more]}
    d.stop()


def test_check_names_the_stream_and_refuses_a_missing_one(
    tmp_path: Path, make_nats: MakeNatsServer
) -> None:
    server = make_nats()
    good = run_check(nats_config(tmp_path / "good", server.url))
    assert good.returncode == 0, good.stderr
    [row] = [x for x in good.stdout.splitlines() if x.strip().startswith(SINK)]
    assert f"nats sink {server.url} stream {STREAM} subject inboxd.{{host}}.{{file}}" in row
    missing = run_check(nats_config(tmp_path / "missing", server.url, stream="NOPE",
                                    create=False))  # fmt: skip
    assert missing.returncode == 2, missing.stdout + missing.stderr
    [line] = missing.stderr.strip().splitlines()
    assert "'NOPE'" in line and "stream" in line and f"[sinks.{SINK}]" in line
    down = run_check(nats_config(tmp_path / "down", f"nats://127.0.0.1:{free_port()}"))
    assert down.returncode == 0, down.stderr
    assert "warning" in down.stderr and "cannot connect" in down.stderr


def test_a_batch_resent_after_the_duplicate_window_is_not_stored_twice(
    tmp_path: Path, make_nats: MakeNatsServer
) -> None:
    """A crash after the PubAcks and before the spool delete, and a restart after the
    server forgot the ids: the sender compares with the last message on each subject."""
    server = make_nats()
    db_path = spool_database(tmp_path)
    add_lines(db_path, 120, sink=SINK)
    table = {"type": "nats", "servers": [server.url], "create": True, "duplicate_window": 1,
             "batch": 50}  # fmt: skip
    spec = parse_sink(SINK, table, "test")
    assert isinstance(spec, NatsSpec)
    board = SinkBoard((spec,))
    sender = spec.sender(SenderContext(board, db_path, "test"))
    try:
        db = connect(db_path)
        try:
            batch, rows = spool.take_batch(db, SINK, spec.batch, INSTANCE) or pytest.fail("empty")
            assert sender.transport.send(batch, rows, INSTANCE).ok  # and no ack_batch: a crash
            forgotten(server.url)
            with transaction(db):  # the batch was taken longer ago than the window
                db.conn.execute("UPDATE spool_batches SET created = ?", (time.time() - 60,))
        finally:
            db.close()
        assert stream_count(server.url) == 52  # the batch and the probe, twice
        now = 0.0
        for _ in range(20):
            now += sender.step(now)
            if sender.idle:
                break
        assert sender.idle and board.pending(SINK) == 0
    finally:
        sender.close()
    stored = [m for m in stream_messages(server.url) if m.headers.get("Inboxd-File")]
    assert_once(stored, [f"line {i}" for i in range(1, 121)])


def forgotten(url: str) -> None:
    """Wait until the stream's duplicate window no longer holds ids published now: a probe
    id published after them is accepted again."""

    async def publish() -> bool:
        nc = await nats.connect(url, allow_reconnect=False)
        try:
            ack = await nc.jetstream().publish("inboxd.probe.x", b"probe",
                                               headers={"Nats-Msg-Id": "probe"})  # fmt: skip
            return not ack.duplicate
        finally:
            await nc.close()

    assert asyncio.run(publish())
    wait_for(lambda: asyncio.run(publish()), 10, "the probe's id forgotten", interval=0.2)
