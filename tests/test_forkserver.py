"""The workers' fork server starts before the daemon imports the rest of itself, when
the daemon runs and its settings ask for workers; a bad option or config is still
reported once, by main()."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from daemon_fixtures import REPO, daemon_env, dir_args, run_cli, write_config

# Run in a fresh interpreter: does importing `daemon` with this argv start the server,
# before main() is called? Prints the server's count among this process's children.
PROBE = """
import os, sys
sys.argv = sys.argv[1:]
import daemon
me = os.getpid()
found = 0
for tid in os.listdir(f"/proc/{me}/task"):
    for child in open(f"/proc/{me}/task/{tid}/children").read().split():
        if b"multiprocessing.forkserver" in open(f"/proc/{child}/cmdline", "rb").read():
            found += 1
print(found)
"""


def servers_started(argv: list[str]) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=REPO, env=daemon_env(None),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return int(done.stdout)


def test_the_daemon_with_workers_starts_the_server_before_main(tmp_path: Path) -> None:
    conf = write_config(tmp_path / "conf", workers=2)
    assert servers_started(["daemon.py", "--config", str(conf)]) == 1
    assert servers_started(["/usr/bin/inboxd", "--workers", "2"]) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["daemon.py"],  # one worker by default
        ["daemon.py", "--workers", "1"],
        ["daemon.py", "check", "--workers", "2"],  # a subcommand routes nothing
        ["pytest", "--workers", "2"],  # imported by another program
        ["daemon.py", "--workers", "2", "--no-such-option"],
        ["daemon.py", "--workers", "2", "--config", "/nonexistent/inboxd.toml"],
        ["daemon.py", "--help", "--workers", "2"],
    ],
)
def test_no_server_otherwise_and_nothing_printed(argv: list[str]) -> None:
    assert servers_started(argv) == 0


def test_a_config_that_does_not_parse_starts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"[daemon]\nworkers = 2\n[[[\xff")
    assert servers_started(["daemon.py", "--config", str(bad)]) == 0
    done = run_cli("--config", str(bad))
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1


def test_a_bad_option_with_workers_is_reported_once(tmp_path: Path) -> None:
    done = run_cli("--workers", "2", "--no-such-option")
    assert done.returncode == 2
    assert done.stderr.count("unrecognized arguments: --no-such-option") == 1
    missing = tmp_path / "missing.toml"
    done = run_cli("--workers", "2", "--config", str(missing))
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and str(missing) in done.stderr


@pytest.mark.parametrize("mode", [["--once"], ["--port", "0"]])
def test_a_temporary_folder_the_server_cannot_use_exits_2_with_one_line(
    tmp_path: Path, mode: list[str]
) -> None:
    """The server's socket lives under TMPDIR: a path too long for a socket's address
    (108 bytes) stops it. One line naming the folder, exit 2, nothing routed."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.log").write_text("one\n")
    done = run_cli(*dir_args(tmp_path), "--workers", "2", *mode, env={"TMPDIR": str(deep)})
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert "cannot start the worker processes" in done.stderr and str(deep) in done.stderr
    assert not (tmp_path / "outbox" / "a.log").exists()
    ok = run_cli(*dir_args(tmp_path), "--workers", "2", "--once")  # the usual TMPDIR
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "outbox" / "a.log").read_text() == "one\n"
