"""One daemon per state folder and per outbox: a second one (or --once) exits 2 with one
line naming the folder and the holder's pid; kill -9 of the holder frees both at once;
`check` does not take the lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from daemon_fixtures import REPO, MakeDaemon, daemon_env, dir_args, outbox_line_count
from net_fixtures import wait_for


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "daemon.py"), *args], env=daemon_env(),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def test_a_second_daemon_on_one_state_folder_exits_2_naming_it_and_the_pid(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    first = make_daemon().start()
    (first.inbox / "a.log").write_text("".join(f"line {i}\n" for i in range(2000)))
    wait_for(lambda: outbox_line_count(first.outbox) == 2000, 20, "the first daemon's lines")
    assert first.proc is not None
    pid = first.proc.pid
    # The same state folder under another inbox and outbox: refused, before reading.
    other = tmp_path / "other"
    for extra in ([], ["--once"]):
        done = run("--inbox", str(other / "in"), "--outbox", str(other / "out"),
                   "--state-dir", str(first.state_dir), *extra)  # fmt: skip
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and str(first.state_dir) in lines[0], done.stderr
        assert f"pid {pid}" in lines[0] and "state folder" in lines[0]
    # The same outbox under another state folder: refused too (it would double the outbox).
    done = run("--inbox", str(first.inbox), "--outbox", str(first.outbox),
               "--state-dir", str(other / "var"), "--once")  # fmt: skip
    assert done.returncode == 2 and "outbox" in done.stderr and f"pid {pid}" in done.stderr
    assert outbox_line_count(first.outbox) == 2000
    # check reads the config only: it runs beside the daemon.
    assert run("check").returncode == 0


def test_kill_9_frees_the_lock_at_once(make_daemon: MakeDaemon) -> None:
    first = make_daemon().start()
    (first.inbox / "a.log").write_text("".join(f"line {i}\n" for i in range(500)))
    wait_for(lambda: outbox_line_count(first.outbox) == 500, 20, "the first daemon's lines")
    first.kill()
    (first.inbox / "b.log").write_text("".join(f"more {i}\n" for i in range(300)))
    done = run(*dir_args(first.root), "--once")
    assert done.returncode == 0, done.stderr
    assert outbox_line_count(first.outbox) == 800
