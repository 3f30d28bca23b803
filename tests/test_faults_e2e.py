"""Faults of the world against the daemon as a subprocess: it stays up, /health and /files
say what is wrong while it lasts, and nothing is lost or doubled.

Faults are produced for real: a non-UTF-8 name, a folder swapped for a file, a second
SQLite connection holding an exclusive lock, a small tmpfs filled up (root), the daemon
run as `nobody` for permission faults (root), a low open-files limit with idle clients.
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_fixtures import Daemon, MakeDaemon, outbox_counter, run_cli, write_config
from net_fixtures import wait_for

IS_ROOT = os.geteuid() == 0


def lines_of(prefix: str, start: int, stop: int) -> list[str]:
    return [f"{prefix} line {i:06d}" for i in range(start, stop)]


def append(path: Path | bytes, lines: list[str]) -> None:
    with open(path, "a") as fh:
        fh.write("".join(x + "\n" for x in lines))


def health(d: Daemon) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(d.url + "/health", timeout=10).json()
    return doc


def api_answers(d: Daemon) -> bool:
    try:
        return httpx.get(d.url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def file_states(d: Daemon) -> dict[str, dict[str, Any]]:
    return {f["path"]: f for f in d.get("/files")}


def permission_checks() -> list[str]:
    """A command prefix under which file permissions apply to the daemon.

    Root bypasses them (CAP_DAC_OVERRIDE); `setpriv` drops that capability while the
    daemon still runs as root, so the interpreter under /root stays reachable.
    """
    if not IS_ROOT:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root bypasses file permissions and setpriv is missing")
    drop = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", "--"]


# -- names and folders -------------------------------------------------------------------


def test_an_odd_name_does_not_stop_the_inbox(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    conf = write_config(tmp_path / "conf")
    inbox = tmp_path / "once" / "inbox"
    inbox.mkdir(parents=True)
    append(os.fsencode(inbox) + b"/bad\xffname.log", ["odd"])
    append(inbox / "good.log", ["good"])
    root = tmp_path / "once"
    done = run_cli("--once", "--config", str(conf), "--inbox", str(inbox),
                   "--outbox", str(root / "outbox"), "--state-dir", str(root / "var"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (root / "outbox" / "good.log").read_text() == "good\n"
    with open(os.fsencode(root / "outbox") + b"/bad\xffname.log") as fh:
        assert fh.read() == "odd\n"

    d = make_daemon(config=conf).start()
    append(os.fsencode(d.inbox) + b"/caf\xe9.log", ["live odd"])
    append(d.inbox / "ok.log", ["live good"])
    wait_for(lambda: outbox_counter(d.outbox) == Counter(["live odd", "live good"]), 20, "both")
    wait_for(lambda: "caf\\xe9.log" in file_states(d), 10, "escaped name in /files")
    d.stop()


def test_a_folder_swapped_for_a_file_stops_that_file_only(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    d = make_daemon(config=write_config(tmp_path / "conf")).start()
    append(d.inbox / "a", ["a was a file"])
    wait_for(lambda: (d.outbox / "a").is_file(), 20, "outbox/a as a file")
    (d.inbox / "a").unlink()
    (d.inbox / "a").mkdir()
    append(d.inbox / "a" / "x.log", ["inside the folder"])
    append(d.inbox / "other.log", ["still flowing"])
    wait_for(lambda: (d.outbox / "other.log").is_file(), 20, "the other file delivered")
    state = wait_for(lambda: file_states(d).get("a/x.log", {}).get("state") == "error"
                     and file_states(d)["a/x.log"], 20, "a/x.log in error")  # fmt: skip
    assert state["reason"].startswith("outbox a/x.log: ")
    errors = [e for e in d.get("/errors") if e["processor"] == "inbox"]
    assert [e["file"] for e in errors] == ["a/x.log"]
    assert health(d)["status"] == "ok"
    (d.outbox / "a").rename(d.outbox / "a.old")
    append(d.inbox / "a" / "x.log", ["and a change"])  # any change retries at once
    wait_for(lambda: (d.outbox / "a" / "x.log").is_file()
             and (d.outbox / "a" / "x.log").read_text() == "inside the folder\nand a change\n",
             10, "a/x.log delivered")  # fmt: skip
    assert d.is_running()
    d.stop()


# -- shared resources --------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_a_database_locked_by_another_program_pauses_then_resumes(
    tmp_path: Path, make_daemon: MakeDaemon, workers: int
) -> None:
    d = make_daemon(config=write_config(tmp_path / "conf", workers=workers)).start()
    append(d.inbox / "a.log", lines_of("before", 0, 100))
    wait_for(lambda: sum(outbox_counter(d.outbox).values()) == 100, 20, "first lines")
    other = sqlite3.connect(d.state_dir / "inboxd.db", isolation_level=None, timeout=30)
    other.execute("BEGIN EXCLUSIVE")
    try:
        append(d.inbox / "a.log", lines_of("during", 0, 1000))
        check = wait_for(lambda: health(d)["checks"]["database"]["status"] == "degraded"
                         and health(d), 30, "database degraded")  # fmt: skip
        assert check["status"] == "degraded"
        assert "locked" in check["checks"]["database"]["reason"]
        assert httpx.get(d.url + "/health", timeout=5).status_code == 200
        append(d.inbox / "a.log", lines_of("more", 0, 100))
    finally:
        other.execute("ROLLBACK")
        other.close()
    expected = Counter(lines_of("before", 0, 100) + lines_of("during", 0, 1000)
                       + lines_of("more", 0, 100))  # fmt: skip
    wait_for(lambda: outbox_counter(d.outbox) == expected, 40, "every line once")
    wait_for(lambda: health(d)["status"] == "ok", 20, "healthy again")
    # Lines routed before the failed commit are routed again: counted once all the same.
    assert d.stats()["keep"]["count"] == sum(expected.values())
    d.stop()
    assert outbox_counter(d.outbox) == expected


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (root only)."""
    if not IS_ROOT:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_full_outbox_disk_pauses_and_resumes_when_freed(
    tmp_path: Path, make_daemon: MakeDaemon, small_disk: Path, workers: int
) -> None:
    outbox = small_disk / "outbox"
    conf = write_config(tmp_path / "conf", workers=workers)
    d = make_daemon(config=conf, extra_args=["--outbox", str(outbox)])
    d.start()
    filler = small_disk / "filler"
    with open(filler, "wb") as fh:  # leave about 200 KiB
        fh.write(b"\0" * (4 * 1024 * 1024 - 200 * 1024))
    written = lines_of("x" * 80, 0, 8000)  # about 750 KB: does not fit
    append(d.inbox / "a.log", written)
    check = wait_for(lambda: health(d)["checks"]["disk"]["status"] == "degraded"
                     and health(d)["checks"]["disk"], 30, "disk degraded")  # fmt: skip
    assert "No space left on device" in check["reason"]
    assert d.is_running()
    freed = time.monotonic()
    filler.unlink()
    wait_for(lambda: Counter(outbox_lines(outbox)) == Counter(written), 30, "every line once")
    resumed_s = time.monotonic() - freed
    wait_for(lambda: health(d)["status"] == "ok", 10, "healthy again")
    d.stop()
    assert Counter(outbox_lines(outbox)) == Counter(written)
    print(f"disk freed -> all delivered in {resumed_s:.2f} s")


def outbox_lines(outbox: Path) -> list[str]:
    return [x for p in sorted(outbox.rglob("*.log")) for x in p.read_text().splitlines()]


# -- start-up ----------------------------------------------------------------------------


def test_lost_state_database_is_refused_unless_redelivery_is_allowed(tmp_path: Path) -> None:
    conf = write_config(tmp_path / "conf")
    args = ["--once", "--config", str(conf), "--inbox", str(tmp_path / "inbox"),
            "--outbox", str(tmp_path / "outbox"), "--state-dir", str(tmp_path / "var")]  # fmt: skip
    (tmp_path / "inbox").mkdir()
    append(tmp_path / "inbox" / "a.log", ["one", "two"])
    assert run_cli(*args).returncode == 0
    shutil.rmtree(tmp_path / "var")
    refused = run_cli(*args)
    assert refused.returncode == 2
    message = refused.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert "--allow-redelivery" in message and "inboxd.db" in message
    assert (tmp_path / "outbox" / "a.log").read_text() == "one\ntwo\n"
    again = run_cli(*args, "--allow-redelivery")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "outbox" / "a.log").read_text() == "one\ntwo\none\ntwo\n"
    assert run_cli(*args).returncode == 0  # the new database is now the outbox's


def test_another_state_database_is_refused(tmp_path: Path) -> None:
    conf = write_config(tmp_path / "conf")
    base = ["--once", "--config", str(conf), "--inbox", str(tmp_path / "inbox"),
            "--outbox", str(tmp_path / "outbox")]  # fmt: skip
    (tmp_path / "inbox").mkdir()
    append(tmp_path / "inbox" / "a.log", ["one"])
    assert run_cli(*base, "--state-dir", str(tmp_path / "var1")).returncode == 0
    other = run_cli(*base, "--state-dir", str(tmp_path / "var2"))
    assert other.returncode == 2, other.stderr
    assert "another state database" in other.stderr or "a new state database" in other.stderr


def test_a_state_folder_that_cannot_be_written_exits_2_with_one_line(tmp_path: Path) -> None:
    wrapper = permission_checks()
    (tmp_path / "var").mkdir()
    (tmp_path / "var").chmod(0o555)
    done = subprocess.run(
        [*wrapper, sys.executable, "daemon.py", "--once", "--inbox", str(tmp_path / "inbox"),
         "--outbox", str(tmp_path / "outbox"), "--state-dir", str(tmp_path / "var")],
        cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert str(tmp_path / "var") in done.stderr and "Traceback" not in done.stderr


# -- permissions and descriptors ---------------------------------------------------------


def test_an_unreadable_file_is_shown_and_read_once_permitted(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    d = make_daemon(config=write_config(tmp_path / "conf"), wrapper=permission_checks())
    d.start()
    secret = d.inbox / "secret.log"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o000)  # unreadable from birth
    os.write(fd, b"hidden at first\n")
    os.close(fd)
    append(d.inbox / "open.log", ["readable"])
    wait_for(lambda: (d.outbox / "open.log").is_file(), 20, "the readable file delivered")
    state = wait_for(lambda: file_states(d).get("secret.log", {}).get("state") == "error"
                     and file_states(d)["secret.log"], 20, "secret.log in error")  # fmt: skip
    assert "PermissionError" in state["reason"]
    assert [e["file"] for e in d.get("/errors") if e["processor"] == "inbox"] == ["secret.log"]
    started = time.monotonic()
    secret.chmod(0o644)
    wait_for(lambda: (d.outbox / "secret.log").is_file(), 10, "delivered once readable")
    assert time.monotonic() - started < 10  # an attribute event, not the 30 s rescan
    d.stop()


def test_idle_clients_never_starve_the_inbox_of_descriptors(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    d = make_daemon(config=write_config(tmp_path / "conf"), preexec=low_limit).start()
    clients: list[socket.socket] = []
    try:
        for _ in range(1100):
            s = socket.socket()
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", d.port))
            except OSError:
                s.close()
                continue
            clients.append(s)
        for n in range(20):
            append(d.inbox / f"new-{n}.log", [f"line of file {n}"])
        expected = Counter(f"line of file {n}" for n in range(20))
        started = time.monotonic()
        wait_for(lambda: outbox_counter(d.outbox) == expected, 15, "all new files delivered")
        assert time.monotonic() - started < 10, "delivered by events, not by the rescan"
        assert d.is_running()
        # Clients that never send a request are let go: the API serves again while
        # they are still connected.
        wait_for(lambda: api_answers(d), 25, "API answers beside idle clients")
    finally:
        for s in clients:
            s.close()
    d.stop()


def test_an_inbox_replaced_by_a_file_is_degraded_until_it_is_a_folder_again(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    d = make_daemon(config=write_config(tmp_path / "conf")).start()
    append(d.inbox / "a.log", ["before"])
    wait_for(lambda: (d.outbox / "a.log").is_file(), 20, "first file")
    shutil.rmtree(d.inbox)
    d.inbox.write_text("not a folder\n")
    check = wait_for(lambda: health(d)["checks"]["watcher"]["status"] == "degraded"
                     and health(d)["checks"]["watcher"], 20, "watcher degraded")  # fmt: skip
    assert "cannot watch" in check["reason"]
    assert d.is_running()
    d.inbox.unlink()
    d.inbox.mkdir()
    wait_for(lambda: health(d)["status"] == "ok", 20, "watching again")
    append(d.inbox / "b.log", ["after"])
    wait_for(lambda: (d.outbox / "b.log").is_file(), 10, "read again by events")
    d.stop()


FOLDER_OPTIONS = {"--inbox": "inbox", "--outbox": "outbox", "--state-dir": "state folder"}


@pytest.mark.parametrize("mode", [["--once"], ["--port", "0"]], ids=["once", "daemon"])
@pytest.mark.parametrize("option", FOLDER_OPTIONS)
def test_a_folder_option_naming_a_file_exits_2_saying_not_a_folder(
    tmp_path: Path, option: str, mode: list[str]
) -> None:
    folders = {"--inbox": tmp_path / "inbox", "--outbox": tmp_path / "outbox",
               "--state-dir": tmp_path / "var"}  # fmt: skip
    folders[option] = tmp_path / "a.log"
    folders[option].write_text("a file\n")
    args = [arg for pair in folders.items() for arg in (pair[0], str(pair[1]))]
    done = run_cli(*mode, *args)
    assert done.returncode == 2, done.stderr
    what = FOLDER_OPTIONS[option]
    assert done.stderr.splitlines() == [
        f"inboxd: {folders[option]}: not a folder, so it cannot be the {what}"
    ]
    assert folders[option].read_text() == "a file\n"


@pytest.mark.parametrize("option", FOLDER_OPTIONS)
def test_a_folder_option_below_a_file_exits_2_naming_the_file(tmp_path: Path, option: str) -> None:
    folders = {"--inbox": tmp_path / "inbox", "--outbox": tmp_path / "outbox",
               "--state-dir": tmp_path / "var"}  # fmt: skip
    (tmp_path / "a.log").write_text("a file\n")
    folders[option] = tmp_path / "a.log" / "sub"
    args = [arg for pair in folders.items() for arg in (pair[0], str(pair[1]))]
    done = run_cli("--once", *args)
    assert done.returncode == 2, done.stderr
    what = FOLDER_OPTIONS[option]
    assert done.stderr.splitlines() == [
        f"inboxd: {folders[option]}: {what} cannot be made: {tmp_path / 'a.log'} is not a folder"
    ]
