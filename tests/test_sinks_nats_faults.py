"""The nats sink under faults, end to end: the server killed -9 mid-stream, inboxd killed
-9 again and again, a stream full under discard = "new", wrong credentials. Nothing is
lost, nothing is stored twice, and a sink that cannot deliver pauses and says why."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_fixtures import Daemon, MakeDaemon, pause, read_outbox
from nats_e2e_fixtures import (
    SINK,
    assert_once,
    nats_config,
    stream_count,
    stream_messages,
    update_stream,
    write_lines,
)
from nats_fixtures import MakeNatsServer, nats_server_factory
from net_fixtures import wait_for


@pytest.fixture
def make_nats(tmp_path: Path) -> Iterator[MakeNatsServer]:
    yield from nats_server_factory(tmp_path)


def sink_of(d: Daemon) -> dict[str, Any]:
    [sink] = d.get("/sinks")
    assert sink["name"] == SINK
    return dict(sink)


def sinks_check(d: Daemon) -> dict[str, str]:
    check: dict[str, str] = d.get("/health")["checks"]["sinks"]
    return check


def test_the_server_killed_mid_stream_and_restarted_stores_every_line_once(
    tmp_path: Path, make_nats: MakeNatsServer, make_daemon: MakeDaemon
) -> None:
    server = make_nats()
    # Large batches, so that the kill lands inside one: its first part is stored, its
    # PubAcks lost, and the whole batch is published again after the restart.
    d = make_daemon(config=nats_config(tmp_path / "conf", server.url, batch=5000),
                    flush_interval=0.2)  # fmt: skip
    want = write_lines(d.inbox / "a.log", 0, 12_000)
    d.start()
    wait_for(lambda: stream_count(server.url) >= 1000, 20, "publishing under way", interval=0.01)
    server.kill()
    want += write_lines(d.inbox / "a.log", 12_000, 20_000)
    wait_for(lambda: sinks_check(d)["status"] == "degraded", 15, "sinks degraded")
    assert "nats" in sinks_check(d)["reason"]
    server.start()  # same port, same store
    wait_for(lambda: stream_count(server.url) >= 20_000, 40, "every line in the stream")
    wait_for(lambda: sink_of(d)["pending"] == 0, 10, "the spool empty")
    assert sink_of(d)["status"] == "ok"
    d.stop()
    assert_once(stream_messages(server.url), want)
    assert read_outbox(d.outbox) == {"a.log": want}


def test_inboxd_killed_9_again_and_again_stores_every_line_once(
    tmp_path: Path, make_nats: MakeNatsServer, make_daemon: MakeDaemon
) -> None:
    server = make_nats()
    d = make_daemon(config=nats_config(tmp_path / "conf", server.url, batch=200),
                    flush_interval=0.2)  # fmt: skip
    rnd = random.Random(20261206)
    want: dict[str, list[str]] = {"a.log": [], "b.log": []}
    for i in range(5):
        for name in want:
            want[name] += write_lines(d.inbox / name, i * 1000, (i + 1) * 1000)
        d.start()
        pause(rnd.uniform(0.0, 0.6))  # a random moment while the lines flow
        d.kill()
    d.start()
    wait_for(lambda: stream_count(server.url) >= 10_000, 40, "every line in the stream")
    wait_for(lambda: sink_of(d)["pending"] == 0, 10, "the spool empty")
    d.stop()
    assert_once(stream_messages(server.url), want["a.log"] + want["b.log"])
    assert read_outbox(d.outbox) == want


def test_a_full_stream_under_discard_new_pauses_the_sink_and_drops_nothing(
    tmp_path: Path, make_nats: MakeNatsServer, make_daemon: MakeDaemon
) -> None:
    server = make_nats()
    conf = nats_config(tmp_path / "conf", server.url, discard="new", max_msgs=1000, batch=300)
    d = make_daemon(config=conf, flush_interval=0.2)
    want = write_lines(d.inbox / "a.log", 0, 3000)
    d.start()
    wait_for(lambda: sinks_check(d)["status"] == "degraded", 20, "sinks degraded")
    reason = sinks_check(d)["reason"]
    assert f"sink {SINK}" in reason and "maximum messages" in reason, reason
    sink = sink_of(d)
    assert sink["status"] == "degraded" and "maximum messages" in str(sink["reason"])
    assert stream_count(server.url) == 1000
    # Nothing dropped: what the stream did not take waits in the spool.
    wait_for(lambda: sink_of(d)["pending"] >= 2000, 10, "the rest spooled")
    update_stream(server.url, max_msgs=-1)
    wait_for(lambda: stream_count(server.url) >= 3000, 40, "the rest in the stream")
    wait_for(lambda: sink_of(d)["pending"] == 0, 10, "the spool empty")
    assert sink_of(d)["status"] == "ok" and sinks_check(d)["status"] == "ok"
    d.stop()
    assert_once(stream_messages(server.url), want)
    assert read_outbox(d.outbox) == {"a.log": want}


AUTH_FAILED = re.compile(r"authori[sz]ation violation|authentication error", re.IGNORECASE)


def test_wrong_credentials_are_one_clear_error_retried_with_back_off(
    tmp_path: Path, make_nats: MakeNatsServer, make_daemon: MakeDaemon
) -> None:
    server = make_nats(users=[("inboxd", "right")])
    conf = nats_config(tmp_path / "conf", server.url, user="inboxd", password="wrong")
    d = make_daemon(config=conf, flush_interval=0.2)
    write_lines(d.inbox / "a.log", 0, 100)
    d.start()
    wait_for(lambda: sinks_check(d)["status"] == "degraded", 20, "sinks degraded")
    reason = sinks_check(d)["reason"]
    assert "authorization violation" in reason and "wrong" not in reason, reason
    # Retried with back-off: a few attempts in 4 s, no busy loop.
    errors, refused = sink_of(d)["errors"], len(AUTH_FAILED.findall(server.log()))
    t0 = time.monotonic()
    pause(4.0)
    attempts = sink_of(d)["errors"] - errors
    connections = len(AUTH_FAILED.findall(server.log())) - refused
    elapsed = time.monotonic() - t0
    assert 1 <= attempts <= 6, (attempts, elapsed)
    assert 1 <= connections <= 4 * attempts + 4, (connections, attempts)
    # One clear line in the log, not one per attempt.
    events = [json.loads(x) for x in (d.state_dir / "logs" / "inboxd.log").read_text().splitlines()]
    said = [e["msg"] for e in events if e.get("event") == "sink_failed"]
    assert len(said) == 1 and "authorization violation" in said[0], said
    assert "authorization violation" in d.stderr()  # the start-up check's warning
    assert sink_of(d)["pending"] > 0
    d.stop()
