"""`GET /tap` and `inboxd tap`: lines flowing now, paths built only while someone listens."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_fixtures import REPO, MakeDaemon, daemon_env
from net_fixtures import wait_for
from web_fixtures import make_context, no_thread_leak, serving  # noqa: F401

from processors.builtin import mask_secrets
from processors.pipeline import load_pipeline
from processors.router import Router
from store.live.telemetry import Telemetry
from web.app import create_app
from web.server import WebServer

INPUT = ["INFO one", "WARN two", "DEBUG three", "ERROR four password=x"]


class Feeder:
    """Routes batches through a real Router into Telemetry, as the engine thread does."""

    def __init__(self, telemetry: Telemetry, *, trace: bool = False) -> None:
        self.telemetry = telemetry
        self.router = Router(load_pipeline(None), trace=trace, tap=telemetry.tap)
        self.traced_batches = 0

    def feed(self, file: str = "app/a.log") -> None:
        routed = self.router.route(list(INPUT), file, 1)
        self.telemetry.add_stats(routed.stats)
        if routed.traces is not None:
            self.traced_batches += 1
            self.telemetry.add_traces(routed.traces)


def sse_events(
    url: str, params: dict[str, str | int | float], token: str | None = None
) -> list[dict[str, Any]]:
    """The data events of one /tap stream read to its end."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    found: list[dict[str, Any]] = []
    with httpx.stream("GET", f"{url}/tap", params=params, headers=headers, timeout=20) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: {"):
                found.append(json.loads(line[6:]))
    return found


def feed_while(condition_done: threading.Event, feeder: Feeder, file: str) -> None:
    while not condition_done.wait(0.02):
        if feeder.telemetry.tap.active:
            feeder.feed(file)


@contextlib.contextmanager
def feeding(feeder: Feeder, file: str = "app/a.log") -> Iterator[threading.Event]:
    done = threading.Event()
    thread = threading.Thread(target=feed_while, args=(done, feeder, file))
    thread.start()
    try:
        yield done
    finally:
        done.set()
        thread.join(5)


def test_no_path_is_built_without_a_tap_client_or_trace() -> None:
    telemetry = Telemetry(trace_enabled=False)
    feeder = Feeder(telemetry)
    feeder.feed()
    assert feeder.traced_batches == 0
    subscriber = telemetry.tap.subscribe()
    feeder.feed()
    assert feeder.traced_batches == 1
    records, _ = telemetry.tap.take(subscriber, 100)
    assert [list(r.path) for r in records] == [
        ["start", "info", "redact", "end"],
        ["start", "warn", "redact", "end"],
        ["start", "debug"],
        ["start", "error", "redact", "end"],
    ]
    assert telemetry.trace_paths() == [], "tap paths stay out of /trace when tracing is off"
    telemetry.tap.unsubscribe(subscriber)
    feeder.feed()
    assert feeder.traced_batches == 1, "the last client left: no more paths"


def test_tap_streams_paths_with_file_and_line_and_filters(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, telemetry=Telemetry(trace_enabled=False))
    feeder = Feeder(ctx.telemetry)
    with serving(ctx) as url, feeding(feeder):
        events = sse_events(url, {"limit": 4, "seconds": 10})
        warn_only = sse_events(url, {"limit": 3, "tag": "warn", "seconds": 10})
        other_file = sse_events(url, {"limit": 1, "file": "sys/*.log", "seconds": 1})
        secret = sse_events(url, {"limit": 1, "tag": "error", "seconds": 10})
    assert len(events) == 4
    assert {tuple(e["path"]) for e in events} <= {
        ("start", "info", "redact", "end"),
        ("start", "warn", "redact", "end"),
        ("start", "debug"),
        ("start", "error", "redact", "end"),
    }
    first = events[0]
    assert first["file"] == "app/a.log" and isinstance(first["line_no"], int)
    assert first["line"] == INPUT[first["line_no"] - 1]
    assert len(warn_only) == 3 and all("warn" in e["path"] for e in warn_only)
    assert other_file == []
    assert [e["line"] for e in secret] == ["ERROR four password=***"], "masked like /traces"
    wait_for(lambda: ctx.telemetry.tap.count() == 0, 5, "every client unsubscribed")


def test_tap_sends_at_most_rate_events_a_second(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, telemetry=Telemetry(trace_enabled=False))
    feeder = Feeder(ctx.telemetry)
    with serving(ctx) as url, feeding(feeder):
        events = sse_events(url, {"rate": 20, "seconds": 1.5})
        slow = sse_events(url, {"rate": 2, "seconds": 1.5})
    assert 10 <= len(events) <= 31, len(events)
    assert 1 <= len(slow) <= 3, len(slow)


def test_tap_needs_the_token(tmp_path: Path) -> None:
    with serving(make_context(tmp_path, token="t0k")) as url:
        assert httpx.get(f"{url}/tap", params={"seconds": 0.2}).status_code == 401
        assert sse_events(url, {"seconds": 0.3}, token="t0k") == []


def test_tap_subcommand_prints_path_file_line_and_text(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, telemetry=Telemetry(trace_enabled=False), token="t0k")
    feeder = Feeder(ctx.telemetry)
    with serving(ctx) as url, feeding(feeder, "app/b.log"):
        result = subprocess.run(
            [sys.executable, "daemon.py", "tap", "--url", url, "--tag", "redact",
             "--limit", "2"],
            cwd=REPO, env=daemon_env({"INBOXD_TOKEN": "t0k"}),
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        refused = subprocess.run(
            [sys.executable, "daemon.py", "tap", "--url", url, "--limit", "1"],
            cwd=REPO, env=daemon_env(), capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed = result.stdout.splitlines()
    assert len(printed) == 2, result.stdout
    assert {ln.rsplit("  ", 1)[0] for ln in printed} <= {
        "start>error>redact>end  app/b.log:4",
        "start>info>redact>end  app/b.log:1",
        "start>warn>redact>end  app/b.log:2",
    }
    shown = {mask_secrets(line) for line in INPUT}  # keep_lines = "redacted" by default
    assert all(ln.rsplit("  ", 1)[1] in shown for ln in printed), printed
    assert "password=x" not in result.stdout
    assert refused.returncode == 1 and "401" in refused.stderr and "INBOXD_TOKEN" in refused.stderr


def test_tap_subcommand_reports_an_unreachable_daemon() -> None:
    result = subprocess.run(
        [sys.executable, "daemon.py", "tap", "--url", "http://127.0.0.1:1", "--limit", "1"],
        cwd=REPO, env=daemon_env(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("inboxd tap: cannot reach http://127.0.0.1:1")


def test_tap_stream_ends_after_seconds(tmp_path: Path) -> None:
    with serving(make_context(tmp_path, telemetry=Telemetry(trace_enabled=False))) as url:
        started = time.monotonic()
        with httpx.stream("GET", f"{url}/tap", params={"seconds": 0.5}, timeout=5) as r:
            body = r.read()
        took = time.monotonic() - started
    assert body.startswith(b": tap connected")
    assert 0.4 <= took < 4, took


@pytest.mark.parametrize("workers", [1, 2])
def test_tap_on_a_running_daemon_without_trace(make_daemon: MakeDaemon, workers: int) -> None:
    daemon = make_daemon(extra_args=["--workers", str(workers)]).start()
    tap = subprocess.Popen(
        [sys.executable, "daemon.py", "tap", "--url", daemon.url, "--tag", "warn",
         "--limit", "3"],
        cwd=REPO, env=daemon_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    log = daemon.inbox / "app.log"
    deadline = time.monotonic() + 30
    n = 0
    while tap.poll() is None and time.monotonic() < deadline:
        with log.open("a") as f:
            f.write(f"INFO quiet {n}\nWARN loud {n}\n")
        n += 1
        threading.Event().wait(0.2)
    if tap.poll() is None:
        tap.kill()
    out, err = tap.communicate(timeout=10)
    assert tap.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 3, out
    assert all(ln.startswith("start>warn>") and "  app.log:" in ln for ln in lines), out
    assert all("WARN loud" in ln for ln in lines)
    assert daemon.get("/trace") == [], "tap paths stay out of /trace without --trace"
    daemon.stop()


def test_tap_exits_quietly_when_its_reader_goes_away(make_daemon: MakeDaemon) -> None:
    """`inboxd tap | head -n 1`: the read end of tap's stdout closes after one line."""
    daemon = make_daemon().start()
    tap = subprocess.Popen(
        [sys.executable, "daemon.py", "tap", "--url", daemon.url, "--tag", "warn"],
        cwd=REPO, env=daemon_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert tap.stdout is not None and tap.stderr is not None
    log = daemon.inbox / "app.log"
    written = 0

    def write_one_then(done: Callable[[], bool]) -> Callable[[], bool]:
        def step() -> bool:
            nonlocal written
            with log.open("a") as f:
                f.write(f"WARN loud {written}\n")
            written += 1
            return done()

        return step

    lines: list[str] = []
    stdout = tap.stdout
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()))
    reader.start()
    wait_for(write_one_then(lambda: not reader.is_alive()), 30, "tap prints a first line")
    reader.join()
    assert lines[0].startswith("start>warn>") and "WARN loud" in lines[0], lines
    stdout.close()
    # Its next line meets the closed pipe.
    wait_for(write_one_then(lambda: tap.poll() is not None), 30, "tap exits after its reader")
    err = tap.stderr.read()
    assert tap.returncode == 0, err
    assert err == ""
    daemon.stop()


def test_stopping_the_server_ends_tap_streams_at_once(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, telemetry=Telemetry(trace_enabled=False))
    server = WebServer(create_app(ctx), host="127.0.0.1", port=0)
    server.start()
    ended: list[bytes] = []

    def listen() -> None:
        url = f"http://127.0.0.1:{server.port}/tap"
        with httpx.stream("GET", url, timeout=10) as response:
            ended.append(response.read())

    reader = threading.Thread(target=listen)
    reader.start()
    try:
        wait_for(lambda: ctx.telemetry.tap.count() == 1, 10, "the tap connected")
        started = time.monotonic()
        server.stop()
        server.join(10)
        took = time.monotonic() - started
    finally:
        server.stop()
        server.join(10)
        reader.join(10)
    assert ended and ended[0].startswith(b": tap connected")
    assert took < 2.0, f"stop waited {took:.1f} s for the stream"
