"""The http sink end to end: daemon.py against a real loopback receiver that fails and
recovers, and kill -9 while the receiver is down. Nothing is lost; a line comes twice
only under the same Idempotency-Key."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from daemon_fixtures import REPO, MakeDaemon, daemon_env, outbox_line_count, pause
from http_exact_fixtures import write
from http_receiver import Receiver
from net_fixtures import wait_for


@pytest.fixture
def hook() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


PIPE = 'def go(line):\n    yield "hook", line\n    yield "end", line\n'


def config(folder: Path, url: str, **sink: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hookpipe.py").write_text(PIPE)
    extra = "".join(f"{k} = {v!r}\n" for k, v in sink.items())
    path = folder / "inboxd.toml"
    path.write_text(
        f'[pipeline]\nstart = "hookpipe:go"\n\n[sinks.hook]\ntype = "http"\nurl = "{url}"\n'
        f"batch = 100\ntimeout = 2\n{extra}"
    )
    return path


def delivered(r: Receiver) -> Counter[str]:
    """Lines the receiver acknowledged, once per Idempotency-Key (as a receiver dedupes)."""
    by_key = {req.key: req.body for req in list(r.accepted)}
    got: Counter[str] = Counter()
    for body in by_key.values():
        got.update(json.loads(x)["line"] for x in body.decode().splitlines())
    return got


def test_a_failing_receiver_pauses_reading_and_loses_nothing(
    tmp_path: Path, make_daemon: MakeDaemon, hook: Receiver
) -> None:
    hook.plan = [("status", 503, {"Retry-After": "1"})] * 3
    d = make_daemon(config=config(tmp_path / "conf", hook.url))
    d.start()
    want = write(d.inbox / "a.log", 0, 1000)
    wait_for(lambda: hook.got(1), 20, "the first POST")
    wait_for(lambda: d.get("/health")["checks"]["sinks"]["status"] == "degraded", 5, "degraded")
    assert "HTTP 503" in d.get("/health")["checks"]["sinks"]["reason"]
    sink = d.get("/sinks")[0]
    assert sink["name"] == "hook" and sink["pending"] == 1000 and sink["errors"] >= 1
    # Back-pressure: lines written while the sink fails are not read (no checkpoint moves).
    before = outbox_line_count(d.outbox)
    want += write(d.inbox / "b.log", 0, 500)
    pause(0.8)
    assert outbox_line_count(d.outbox) == before
    wait_for(lambda: sum(delivered(hook).values()) >= 1500, 30, "every line delivered")
    assert delivered(hook) == Counter(want)
    hook.check_keys()
    assert d.get("/health")["checks"]["sinks"]["status"] == "ok"
    metrics = httpx.get(d.url + "/metrics", timeout=10).text
    assert 'inboxd_sink_lines_total{sink="hook"} 1500.0' in metrics
    assert 'inboxd_sink_pending_lines{sink="hook"} 0.0' in metrics
    d.stop()


def test_kill_9_while_the_receiver_is_down_loses_nothing(
    tmp_path: Path, make_daemon: MakeDaemon, hook: Receiver
) -> None:
    hook.plan = [("status", 500, {})] * 1000
    d = make_daemon(config=config(tmp_path / "conf", hook.url))
    want = write(d.inbox / "a.log", 0, 2000)
    d.start()
    wait_for(lambda: hook.got(2), 20, "failing POSTs")
    d.kill()
    with hook.lock:
        hook.plan = [("status", 200, {})] * 3 + [("drop",)] + [("status", 200, {})] * 2
    want += write(d.inbox / "a.log", 2000, 2600)
    d.start()
    wait_for(lambda: sum(delivered(hook).values()) >= 2600, 30, "every line delivered")
    d.stop()
    assert delivered(hook) == Counter(want)
    hook.check_keys()
    keys = [r.key for r in hook.requests]
    assert len(set(keys)) == 26, "26 batches of 100, each sent under its own key"


def test_once_waits_for_delivery_and_keeps_what_a_dead_receiver_did_not_take(
    tmp_path: Path, hook: Receiver
) -> None:
    """--once against a receiver that keeps failing exits 1 and keeps the lines spooled;
    the next --once, receiver back, delivers them all, under the keys first tried."""
    conf = config(tmp_path / "conf", hook.url)
    want = write(tmp_path / "inbox" / "a.log", 0, 300)
    with hook.lock:
        hook.plan = [("status", 503, {})] * 10_000
    first = run_once(tmp_path, conf)
    assert first.returncode == 1, first.stderr
    assert "hook" in first.stderr and "spooled" in first.stderr
    tried = {r.key for r in hook.requests}
    with hook.lock:
        hook.plan = []
    second = run_once(tmp_path, conf)
    assert second.returncode == 0, second.stderr
    assert delivered(hook) == Counter(want)
    hook.check_keys()
    assert {r.key for r in hook.accepted} >= tried


def run_once(root: Path, conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "daemon.py", "--once", "--config", str(conf), "--inbox",
         str(root / "inbox"), "--outbox", str(root / "outbox"), "--state-dir", str(root / "var")],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=daemon_env(),
    )  # fmt: skip
