"""Helpers for the http sink's exactly-once-when-nothing-fails tests (test_sinks_http_exact).

A pipeline that sends every line to the outbox and to an http sink, the lines a receiver
got (as sent, and once per Idempotency-Key), a receiver that kills the daemon with
SIGKILL while a POST waits for its answer, and the sink's pending figure as `/sinks` and
`/metrics` show it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
from daemon_fixtures import REPO, Daemon, daemon_env
from http_receiver import Receiver, Request

# "end" first: the outbox file is started (a small commit of its own) before the hook's
# lines of the same chunk wait for the commit that covers them.
BOTH = 'def both(line):\n    yield "end", line\n    yield "hook", line\n'
PENDING_METRIC = re.compile(r'^inboxd_sink_pending_lines\{sink="hook"\} (\S+)$', re.MULTILINE)


def config(folder: Path, url: str, batch: int = 100) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bothpipe.py").write_text(BOTH)
    path = folder / "inboxd.toml"
    path.write_text(
        f'[pipeline]\nstart = "bothpipe:both"\n\n[sinks.hook]\ntype = "http"\nurl = "{url}"\n'
        f"batch = {batch}\ntimeout = 2\n"
    )
    return path


def write(path: Path, first: int, last: int) -> list[str]:
    """Append lines `first`..`last`-1 of `path` (each line names its file); returns them."""
    lines = [f"{path.stem} {i:05d}" for i in range(first, last)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write("".join(x + "\n" for x in lines))
    return lines


def lines_of(req: Request) -> list[str]:
    return [json.loads(x)["line"] for x in req.body.decode().splitlines()]


def received(r: Receiver) -> Counter[str]:
    """Every line of every POST, repeats included (a receiver that does not dedupe)."""
    with r.lock:
        requests = list(r.requests)
    return Counter(x for req in requests for x in lines_of(req))


def deduped(r: Receiver) -> Counter[str]:
    """The lines of the acknowledged POSTs, once per Idempotency-Key."""
    with r.lock:
        by_key = {req.key: req for req in r.accepted}
    return Counter(x for req in by_key.values() for x in lines_of(req))


def keys_per_line(r: Receiver) -> dict[str, set[str]]:
    """Each line received -> the Idempotency-Keys it came under (one, if keys are stable)."""
    found: dict[str, set[str]] = {}
    for req in r.requests:
        for x in lines_of(req):
            found.setdefault(x, set()).add(req.key)
    return found


class KillingReceiver(Receiver):
    """A Receiver whose plan may also hold ("kill", pid_getter): that POST is recorded,
    then the process `pid_getter()` gets SIGKILL and the POST is never answered (the
    connection is held until close()), so the sender's acknowledgement never happens."""

    def __init__(self) -> None:
        super().__init__()
        self.killed: list[Request] = []

    def answer(self, h: BaseHTTPRequestHandler, answer: tuple[Any, ...], req: Request) -> None:
        if answer[0] != "kill":
            super().answer(h, answer, req)
            return
        pid_getter: Callable[[], int] = answer[1]
        with self.lock:
            self.killed.append(req)
        os.kill(pid_getter(), signal.SIGKILL)
        self.release.wait(60)
        h.close_connection = True


def pid_of(d: Daemon) -> Callable[[], int]:
    def pid() -> int:
        assert d.proc is not None
        return d.proc.pid

    return pid


def hook_figures(d: Daemon) -> tuple[int, int, float]:
    """The hook sink's (pending, lines) from `/sinks` and its pending from `/metrics`."""
    sink = next(s for s in d.get("/sinks") if s["name"] == "hook")
    text = httpx.get(d.url + "/metrics", headers=d.headers(), timeout=10).text
    found = PENDING_METRIC.search(text)
    assert found is not None, "no inboxd_sink_pending_lines for the hook in /metrics"
    return int(sink["pending"]), int(sink["lines"]), float(found.group(1))


def run_once(root: Path, conf: Path, workers: int) -> subprocess.CompletedProcess[str]:
    args = ["--once", "--workers", str(workers), "--config", str(conf), "--inbox",
            str(root / "inbox"), "--outbox", str(root / "outbox"), "--state-dir",
            str(root / "var")]  # fmt: skip
    return subprocess.run([sys.executable, "daemon.py", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env=daemon_env())  # fmt: skip
