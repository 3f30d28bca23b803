"""Start `python daemon.py` as a subprocess, the way a user does, and talk to it over HTTP.

Every wait has a deadline; a daemon that does not come up, does not stop, or dies is a
test failure that quotes the tail of its stderr.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.05

PASSTHRU_MODULE = '''\
def keep(line):
    """Every line goes to the outbox unchanged."""
    yield "end", line
'''


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pause(seconds: float) -> None:
    """Pace a writer (not a wait for the daemon: those use wait_for)."""
    threading.Event().wait(seconds)


def wait_for(
    condition: Callable[[], Any], timeout: float = 20.0, what: str = "", interval: float = POLL_S
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not met within {timeout} s: {what or condition}")
        pause(interval)


def write_config(folder: Path, *, pipeline: str | None = None, **daemon: Any) -> Path:
    """A config in `folder` with a `[daemon]` table; `pipeline` defaults to a passthrough."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "passthru.py").write_text(PASSTHRU_MODULE)
    lines = ["[daemon]"]
    for key, value in daemon.items():
        lines.append(f"{key} = {value!r}" if not isinstance(value, str) else f'{key} = "{value}"')
    lines += ["", "[pipeline]", pipeline or 'start = "passthru:keep"', ""]
    path = folder / "inboxd.toml"
    path.write_text("\n".join(lines))
    return path


def read_outbox(outbox: Path) -> dict[str, list[str]]:
    """Every outbox file as its lines: relative path -> lines (newline removed)."""
    found: dict[str, list[str]] = {}
    if not outbox.is_dir():
        return found
    for path in sorted(p for p in outbox.rglob("*") if p.is_file()):
        lines = path.read_bytes().decode("utf-8").split("\n")
        lines.pop()  # the text after the last newline: empty in a well-formed outbox
        found[path.relative_to(outbox).as_posix()] = lines
    return found


def outbox_counter(outbox: Path) -> Counter[str]:
    """All outbox lines, whatever file they are in, as a multiset."""
    counter: Counter[str] = Counter()
    for lines in read_outbox(outbox).values():
        counter.update(lines)
    return counter


def outbox_line_count(outbox: Path) -> int:
    if not outbox.is_dir():
        return 0
    return sum(p.read_bytes().count(b"\n") for p in outbox.rglob("*") if p.is_file())


@dataclass
class Daemon:
    """One `python daemon.py` process and the folders it was given."""

    root: Path
    config: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def state_dir(self) -> Path:
        return self.root / "var"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        args = [sys.executable, "daemon.py", "--inbox", str(self.inbox)]
        args += ["--outbox", str(self.outbox), "--state-dir", str(self.state_dir)]
        args += ["--port", str(self.port), "--flush-interval", "1"]
        if self.config is not None:
            args += ["--config", str(self.config)]
        return args + self.extra_args

    def spawn(self) -> None:
        """Start the process without waiting for it to serve."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.port = free_port()
        self.starts += 1
        log = self.root / f"daemon-{self.starts}.err"
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def start(self) -> Daemon:
        """Start and wait until GET /health answers."""
        self.spawn()
        wait_for(self._is_healthy, START_TIMEOUT_S, f"daemon serving /health\n{self.stderr()}")
        return self

    def _is_healthy(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            pytest.fail(f"daemon exited with {self.returncode()} during start:\n{self.stderr()}")
        try:
            return httpx.get(self.url + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr(self, tail: int = 4000) -> str:
        log = self.root / f"daemon-{self.starts}.err"
        text = log.read_text(errors="replace") if log.exists() else ""
        return text[-tail:]

    def get(self, path: str, **params: Any) -> Any:
        """GET an endpoint of the running daemon; fails unless it answers 200."""
        assert self.is_running(), f"daemon is not running:\n{self.stderr()}"
        response = httpx.get(self.url + path, params=params, timeout=10)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> None:
        """Send `sig` and assert a clean exit (code 0) within `timeout` seconds."""
        assert self.proc is not None
        assert self.proc.poll() is None, f"daemon died early:\n{self.stderr()}"
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"daemon did not stop within {timeout} s after {sig!r}")
        assert code == 0, f"exit code {code} after {sig!r}:\n{self.stderr()}"

    def kill(self) -> None:
        """kill -9, as a crash does."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)


MakeDaemon = Callable[..., Daemon]


def daemon_factory(tmp_path: Path) -> Iterator[MakeDaemon]:
    """Body of a `make_daemon` fixture: Daemons rooted in tmp_path, any left running killed."""
    made: list[Daemon] = []

    def make(
        *, config: Path | None = None, extra_args: list[str] | None = None, name: str = "d"
    ) -> Daemon:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        daemon = Daemon(root, config=config, extra_args=list(extra_args or []))
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.kill()
