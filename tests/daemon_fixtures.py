"""Start `python daemon.py` as a subprocess, the way a user does, and talk to it over HTTP.

Every wait has a deadline; a daemon that does not come up, does not stop, or dies is a
test failure that quotes the tail of its stderr.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from net_fixtures import free_port, wait_for

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
RUN_TIMEOUT_S = 60
# Set by a service manager or a shell; a test gives the daemon only what it asks for.
INHERITED_ONLY = ("INBOXD_TOKEN", "JOURNAL_STREAM", "NOTIFY_SOCKET")

PASSTHRU_MODULE = '''\
def keep(line):
    """Every line goes to the outbox unchanged."""
    yield "end", line
'''


def pause(seconds: float) -> None:
    """Pace a writer (not a wait for the daemon: those use wait_for)."""
    threading.Event().wait(seconds)


def daemon_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the daemon's own variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in INHERITED_ONLY}
    env.update(extra or {})
    return env


def dir_args(root: Path) -> list[str]:
    """--inbox, --outbox and --state-dir as `root`/inbox, `root`/outbox and `root`/var."""
    return [
        "--inbox",
        str(root / "inbox"),
        "--outbox",
        str(root / "outbox"),
        "--state-dir",
        str(root / "var"),
    ]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python daemon.py *args` to its end, as a user does; output captured as text."""
    return subprocess.run(
        [sys.executable, "daemon.py", *args],
        cwd=REPO,
        env=daemon_env(env),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


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


def outbox_files(outbox: Path) -> list[Path]:
    """The outbox's line files: not inboxd's own hidden marker."""
    if not outbox.is_dir():
        return []
    return sorted(p for p in outbox.rglob("*") if p.is_file() and not p.name.startswith("."))


def read_outbox(outbox: Path) -> dict[str, list[str]]:
    """Every outbox file as its lines: relative path -> lines (newline removed)."""
    found: dict[str, list[str]] = {}
    for path in outbox_files(outbox):
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
    return sum(p.read_bytes().count(b"\n") for p in outbox_files(outbox))


@dataclass
class Daemon:
    """One `python daemon.py` process and the folders it was given.

    `flush_interval` None leaves the daemon's own default; `token` is passed with
    --token and sent as a bearer token by `get`; `env` is added to the environment.
    """

    root: Path
    config: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    host: str | None = None
    token: str | None = None
    flush_interval: float | None = 1
    start_timeout: float = START_TIMEOUT_S
    port: int = 0
    # Run in the child before exec (lower limits), and a command the daemon runs under.
    preexec: Callable[[], None] | None = None
    wrapper: list[str] = field(default_factory=list)
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

    def command(self, *extra: str) -> list[str]:
        args = [*self.wrapper, sys.executable, "daemon.py", *dir_args(self.root)]
        args += ["--port", str(self.port)]
        if self.flush_interval is not None:
            args += ["--flush-interval", str(self.flush_interval)]
        if self.config is not None:
            args += ["--config", str(self.config)]
        if self.host is not None:
            args += ["--host", self.host]
        if self.token is not None:
            args += ["--token", self.token]
        return [*args, *self.extra_args, *extra]

    def spawn(self, *extra: str) -> Daemon:
        """Start the process without waiting for it to serve; `extra` args for this run."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.port = free_port()
        self.starts += 1
        log = self.root / f"daemon-{self.starts}.err"
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                self.command(*extra),
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                env=daemon_env({"PYTHONUNBUFFERED": "1", **self.env}),
                preexec_fn=self.preexec,
            )
        return self

    def start(self, *extra: str) -> Daemon:
        """Start and wait until GET /health answers."""
        self.spawn(*extra)
        wait_for(self.is_healthy, self.start_timeout, f"daemon serving /health\n{self.stderr()}")
        return self

    def is_healthy(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            pytest.fail(f"daemon exited with {self.returncode()}:\n{self.stderr()}")
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

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **params: Any) -> Any:
        """GET an endpoint of the running daemon; fails unless it answers 200."""
        assert self.is_running(), f"daemon is not running:\n{self.stderr()}"
        response = httpx.get(self.url + path, params=params, headers=self.headers(), timeout=10)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def stats(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = self.get("/stats")
        return result

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        assert self.proc.poll() is None, f"daemon died early:\n{self.stderr()}"
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """The exit code; fails (after kill -9) unless the process ends within `timeout`."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"daemon still running {timeout} s later:\n{self.stderr()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> None:
        """Send `sig` and assert a clean exit (code 0) within `timeout` seconds."""
        self.send_signal(sig)
        code = self.wait_exit(timeout)
        assert code == 0, f"exit code {code} after {sig!r}:\n{self.stderr()}"

    def kill(self) -> None:
        """kill -9, as a crash does."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)


MakeDaemon = Callable[..., Daemon]


def daemon_factory(tmp_path: Path, **defaults: Any) -> Iterator[MakeDaemon]:
    """Body of a `make_daemon` fixture: Daemons rooted in tmp_path, any left running killed.

    `make(name=..., **options)` passes `options` (over `defaults`) on to `Daemon`.
    """
    made: list[Daemon] = []

    def make(*, name: str = "d", **options: Any) -> Daemon:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        made.append(Daemon(root, **{**defaults, **options}))
        return made[-1]

    yield make
    for daemon in made:
        daemon.kill()
