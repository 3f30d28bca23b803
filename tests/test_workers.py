"""`--workers N`: routing in worker processes, with the daemon as a subprocess.

The same input gives the same outbox bytes, /stats counts, dead letters and traces as one
worker; exactly-once holds across kill -9 of the daemon and of a worker; a line that
kills a worker is quarantined; SIGHUP reloads every worker.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from daemon_fixtures import (
    MakeDaemon,
    outbox_counter,
    pause,
    read_outbox,
    run_cli,
    write_config,
)
from net_fixtures import wait_for
from soak import soak_kills
from soak_common import passthrough_daemon

RULES = """\
import os

def router(line):
    if "RAISE" in line:
        raise ValueError("no good: " + line[:20])
    if "KILL-ME" in line:
        os._exit(70)
    level = "error" if " ERROR " in line else "info"
    return [(level, line)]

def error(line):
    return [("end", "!! " + line), ("end", "copy " + line)]

def info(line):
    if line.endswith("7"):
        return []
    return [("end", line.upper())]
"""

PREFIX = """\
def tag(line):
    return [("end", "{prefix}" + line)]
"""


def rules_config(folder: Path, **daemon: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules.py").write_text(RULES)
    table = 'start = "rules:router"\nerror = { processor = "rules:error", retries = 1 }\n'
    table += 'info = "rules:info"'
    return write_config(folder, pipeline=table, **daemon)


# Files of 1, 2, 3, 7 and 15 chunks of 128 KiB (about 45 bytes a line): with two
# workers, four chunks are in flight, and the last ones of each file are taken back
# after its end was read.
SIZES = (2_000, 4_500, 7_000, 20_000, 42_000)


def make_inbox(inbox: Path, first: int = 0, sizes: tuple[int, ...] = SIZES) -> None:
    """Append lines `first`.. to files f0.log.. of `sizes` lines each."""
    for f, count in enumerate(sizes):
        lines = []
        for i in range(first, first + count):
            level = "ERROR" if i % 13 == 0 else "INFO"
            extra = " RAISE" if i % 997 == 0 else ""
            lines.append(f"2026-12-01T00:00:00Z {level} file {f} line {i}{extra}")
        with open(inbox / f"f{f}.log", "a") as fh:
            fh.write("".join(x + "\n" for x in lines))


def run_once(root: Path, conf: Path, inbox: Path, workers: int) -> dict[str, Any]:
    done = run_cli("--once", "--trace", "--config", str(conf), "--inbox", str(inbox),
                   "--outbox", str(root / "outbox"), "--state-dir", str(root / "var"),
                   "--workers", str(workers))  # fmt: skip
    assert done.returncode == 0, done.stderr
    stats: dict[str, Any] = json.loads(done.stdout)
    return stats


def rows(db: Path, sql: str) -> Counter[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return Counter(tuple(r) for r in conn.execute(sql))
    finally:
        conn.close()


def test_two_workers_give_what_one_gives(tmp_path: Path) -> None:
    """Over files of many chunks, read once and again from their checkpoints after more
    lines came: the same outbox bytes, counts, dead letters and errors."""
    conf = rules_config(tmp_path / "conf")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    make_inbox(inbox)
    for again in (False, True):
        if again:
            make_inbox(inbox, first=max(SIZES), sizes=(3000,) * len(SIZES))
        one = run_once(tmp_path / "one", conf, inbox, 1)
        two = run_once(tmp_path / "two", conf, inbox, 2)
        strip = {k: {f: v[f] for f in ("count", "errors", "retries")} for k, v in one.items()}
        got = {k: {f: v[f] for f in ("count", "errors", "retries")} for k, v in two.items()}
        assert got == strip, f"again={again}"
        for f in range(len(SIZES)):
            a = (tmp_path / "one" / "outbox" / f"f{f}.log").read_bytes()
            assert a == (tmp_path / "two" / "outbox" / f"f{f}.log").read_bytes(), (f, again)
    dead = "SELECT file, line_no, tag, processor, message, line FROM deadletter"
    assert rows(tmp_path / "one/var/inboxd.db", dead) == rows(tmp_path / "two/var/inboxd.db", dead)
    assert rows(tmp_path / "one/var/inboxd.db", dead)
    errors = "SELECT processor, message, file, line_no FROM errors"
    assert rows(tmp_path / "one/var/inboxd.db", errors) == rows(
        tmp_path / "two/var/inboxd.db", errors
    )


def awkward_bytes(seed: int) -> bytes:
    """Lines as files hold them: CRLF, a lone CR, invalid UTF-8, a lone surrogate's
    bytes, multi-byte text, empty lines, long lines, and a last line with no newline."""
    parts = []
    for i in range(6000):
        kind = (i * 7 + seed) % 9
        if kind == 0:
            parts.append(f"crlf {i}\r\n".encode())
        elif kind == 1:
            parts.append(b"bad \xff\xfe utf-8 " + str(i).encode() + b"\n")
        elif kind == 2:
            parts.append(b"surrogate \xed\xa0\x80 " + str(i).encode() + b"\n")
        elif kind == 3:
            parts.append(b"\n")
        elif kind == 4:
            parts.append(f"caf\u00e9 \u2603 cr\r inside {i}\n".encode())
        elif kind == 5:
            parts.append(b"x" * (3000 + i % 5000) + b"\n")
        else:
            parts.append(f"plain line {i}\n".encode())
    parts.append(b"no newline at the end \xff")
    return b"".join(parts)


@pytest.mark.parametrize("max_line_bytes", [1024 * 1024, 4096])
def test_awkward_bytes_give_what_one_worker_gives(tmp_path: Path, max_line_bytes: int) -> None:
    """Worker processes decode the bytes read (or get lines the daemon decoded, when a
    chunk may hold an over-long line) exactly as one worker does."""
    conf = write_config(tmp_path / "conf", max_line_bytes=max_line_bytes)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for seed in range(2):
        (inbox / f"f{seed}.log").write_bytes(awkward_bytes(seed))
    one = run_once(tmp_path / "one", conf, inbox, 1)
    two = run_once(tmp_path / "two", conf, inbox, 2)
    counts = {k: v["count"] for k, v in one.items()}
    assert {k: v["count"] for k, v in two.items()} == counts
    assert sum(counts.values()) > 11_000
    for seed in range(2):
        a = (tmp_path / "one" / "outbox" / f"f{seed}.log").read_bytes()
        assert a == (tmp_path / "two" / "outbox" / f"f{seed}.log").read_bytes()
        assert b"\r\n" not in a and "\ufffd".encode() in a


def test_kill_9_with_two_workers_loses_and_doubles_nothing(tmp_path: Path) -> None:
    d = passthrough_daemon(tmp_path / "d", workers=2)
    r = soak_kills(d, 6, seed=11)
    print(r.summary())
    assert r.ok, r.summary()


def test_kill_9_of_once_runs_over_a_big_file_loses_and_doubles_nothing(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    """`--once` over 52 MB, each line written three times: each time 16 MiB of outbox
    wait, it commits in the middle of the file while the workers route ahead. kill -9 at
    random moments, then a whole run."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "x3.py").write_text('def thrice(line):\n    return (("end", line),) * 3\n')
    d = make_daemon(config=write_config(conf, workers=2, pipeline='start = "x3:thrice"'))
    d.inbox.mkdir(parents=True, exist_ok=True)
    lines = [b"line %07d %s\n" % (i, b"x" * 30) for i in range(1_200_000)]
    (d.inbox / "big.log").write_bytes(b"".join(lines))
    rng = random.Random(5)
    killed_midway = 0
    for _ in range(4):
        d.spawn("--once")
        wait_for(lambda: (d.outbox / "big.log").exists() or d.returncode() is not None, 60)
        pause(rng.uniform(0.0, 0.6))
        killed_midway += d.is_running()
        d.kill()
    assert killed_midway >= 2
    d.spawn("--once")
    assert d.wait_exit(120) == 0, d.stderr()
    assert (d.outbox / "big.log").read_bytes() == b"".join(x * 3 for x in lines)


def children(pid: int | None) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def server_pids(pid: int | None) -> list[int]:
    """The daemon's fork server (one, or none while it is being started again)."""
    found = []
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"forkserver" in cmdline:
            found.append(child)
    return found


def worker_pids(pid: int | None) -> list[int]:
    """The daemon's worker processes: the children of its fork server."""
    return [w for server in server_pids(pid) for w in children(server)]


@pytest.mark.parametrize("victim", ["worker", "fork server"])
def test_a_worker_or_the_fork_server_killed_with_kill_9_loses_and_doubles_nothing(
    tmp_path: Path, make_daemon: MakeDaemon, victim: str
) -> None:
    """A worker killed is started again. The workers are the fork server's children and
    die with it: the daemon then starts a new server and new workers. Either way what
    the dead ones held is routed again."""
    d = make_daemon(config=write_config(tmp_path / "conf", workers=2)).start()
    pid = d.proc.pid if d.proc is not None else None
    pids = wait_for(lambda: len(worker_pids(pid)) == 2 and worker_pids(pid), 20, "two workers")
    server = server_pids(pid)
    written = [f"line {i}" for i in range(300_000)]
    (d.inbox / "big.log").write_text("".join(x + "\n" for x in written))
    wait_for(lambda: sum(outbox_counter(d.outbox).values()) > 10_000, 20, "lines flowing")
    os.kill(pids[0] if victim == "worker" else server[0], signal.SIGKILL)
    wait_for(lambda: outbox_counter(d.outbox) == Counter(written), 60, "every line once")
    assert d.is_running()
    replaced = wait_for(lambda: len(worker_pids(pid)) == 2 and worker_pids(pid), 20, "replaced")
    if victim == "worker":
        assert pids[0] not in replaced and pids[1] in replaced
    else:
        assert not set(pids) & set(replaced) and server_pids(pid) != server
    more = [f"more {i}" for i in range(1000)]
    (d.inbox / "more.log").write_text("".join(x + "\n" for x in more))
    wait_for(lambda: outbox_counter(d.outbox) == Counter(written + more), 30, "after it too")
    d.stop()


def test_a_line_that_kills_a_worker_is_quarantined(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    d = make_daemon(config=rules_config(tmp_path / "conf", workers=2, poison_after=2))
    d.start()
    lines = [f"2026 INFO line {i}" for i in range(3000)]
    lines[1234] = "2026 INFO line 1234 KILL-ME password=hunter2"
    (d.inbox / "a.log").write_text("".join(x + "\n" for x in lines))
    dead = wait_for(lambda: d.get("/deadletter"), 60, "the poison dead letter")
    assert [(x["line_no"], x["processor"]) for x in dead] == [(1235, "router")]
    assert dead[0]["message"].startswith("Poison: a worker stopped 2 times")
    assert "hunter2" not in dead[0]["line"]
    got = read_outbox(d.outbox)["a.log"]
    wanted = [x.upper() for i, x in enumerate(lines) if i != 1234 and not x.endswith("7")]
    wait_for(lambda: read_outbox(d.outbox)["a.log"] == wanted, 30, "the rest, in order")
    assert d.is_running() and got
    d.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_reloads_every_worker(tmp_path: Path, make_daemon: MakeDaemon, workers: int) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "pre.py").write_text(PREFIX.format(prefix="old "))
    conf = write_config(folder, pipeline='start = "pre:tag"', workers=workers)
    d = make_daemon(config=conf).start()
    (d.inbox / "a.log").write_text("".join(f"x{i}\n" for i in range(100)))
    wait_for(lambda: len(read_outbox(d.outbox).get("a.log", [])) == 100, 20, "first lines")
    (folder / "pre.py").write_text(PREFIX.format(prefix="new "))
    assert d.proc is not None
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: any(r.get("event") == "reloaded" for r in log_records(d.state_dir)), 20,
             "reloaded")  # fmt: skip
    with open(d.inbox / "a.log", "a") as fh:
        fh.write("".join(f"y{i}\n" for i in range(100)))
    wait_for(lambda: len(read_outbox(d.outbox)["a.log"]) == 200, 20, "second lines")
    out = read_outbox(d.outbox)["a.log"]
    assert all(x.startswith("old x") for x in out[:100])
    assert all(x.startswith("new y") for x in out[100:])
    d.stop()


def log_records(state: Path) -> list[dict[str, Any]]:
    path = state / "logs" / "inboxd.log"
    found = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found
