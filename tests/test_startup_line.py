"""What a person sees on the terminal: the start-up line, and warnings as text on a TTY."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from daemon_fixtures import REPO, MakeDaemon, daemon_env, dir_args, write_config
from net_fixtures import free_port, wait_for

from web.startup import dashboard_url

FAILING_MODULE = """\
def picky(line):
    if "bad" in line:
        raise ValueError("no bad lines here")
    yield "end", line
"""


def test_startup_line_names_inbox_outbox_state_and_dashboard(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    daemon = make_daemon().start()
    wait_for(lambda: "dashboard" in daemon.stderr(), 10, "start-up line")
    line = next(ln for ln in daemon.stderr().splitlines() if "dashboard" in ln)
    assert str(daemon.inbox.resolve()) in line
    assert str(daemon.outbox.resolve()) in line
    assert str(daemon.state_dir.resolve()) in line
    assert f"http://127.0.0.1:{daemon.port}/" in line
    assert not line.startswith("{"), "a human line, not JSON"
    daemon.stop()


def test_dashboard_url_shows_a_wildcard_bind_as_loopback_and_brackets_ipv6() -> None:
    assert dashboard_url("0.0.0.0", 80) == "http://127.0.0.1:80/"
    assert dashboard_url("::1", 8000) == "http://[::1]:8000/"
    assert dashboard_url("inboxd.lan", 8000) == "http://inboxd.lan:8000/"


def read_pty(fd: int, until: str, timeout: float) -> str:
    """Everything the daemon wrote to the terminal until `until` appears (or time is up)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while until.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen.decode(errors="replace")


def test_processor_errors_reach_a_terminal_as_readable_text(tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", pipeline='start = "picky:picky"')
    (config.parent / "picky.py").write_text(FAILING_MODULE)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "app.log").write_text("good\nbad one\n")
    primary, secondary = pty.openpty()
    args = [*dir_args(tmp_path), "--port", str(free_port()), "--config", str(config)]
    proc = subprocess.Popen(
        [sys.executable, "daemon.py", *args],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
        env=daemon_env(),
    )
    os.close(secondary)
    try:
        text = read_pty(primary, "no bad lines here", 30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        os.close(primary)
    assert "WARNING" in text and "processor error" in text, text
    assert "ValueError: no bad lines here" in text and "processor=picky" in text, text
    assert '{"ts"' not in text, "the terminal gets text, not the JSON log"
    assert proc.returncode == 0


def test_without_a_terminal_stderr_carries_no_log_records(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    config = write_config(tmp_path / "cfg", pipeline='start = "picky:picky"')
    (config.parent / "picky.py").write_text(FAILING_MODULE)
    daemon = make_daemon(config=config).start()
    (daemon.inbox / "app.log").write_text("bad one\n")
    wait_for(lambda: daemon.stats()["picky"]["errors"] >= 1, 20, "the error counted")
    daemon.stop()
    assert "processor error" not in daemon.stderr()
