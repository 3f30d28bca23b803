"""`[[inputs]]` through `daemon.py` as a user runs it: multiline records exactly once and
whole across `kill -9` (one worker and two), where reading starts on the first start
and later ones, and config mistakes refused with one line."""

from __future__ import annotations

import random
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest
from daemon_fixtures import (
    Daemon,
    MakeDaemon,
    dir_args,
    outbox_counter,
    outbox_line_count,
    pause,
    read_outbox,
    run_cli,
    write_config,
)
from net_fixtures import wait_for

# Each record becomes one outbox line, so a record split in two or doubled shows.
MARK_MODULE = '''\
def mark(line):
    """One outbox line per record: its lines joined with " | "."""
    yield "end", line.replace("\\n", " | ")
'''
RECORD_TIMEOUT_S = 0.3


def inputs_config(folder: Path, inputs: str, **daemon: object) -> Path:
    path = write_config(folder, pipeline='start = "mark:mark"', **daemon)
    (folder / "mark.py").write_text(MARK_MODULE)
    path.write_text(path.read_text() + "\n" + inputs)
    return path


MULTILINE = f"""
[[inputs]]
match = "*.log"
multiline = {{ start = '^REC ', max_lines = 50, timeout = {RECORD_TIMEOUT_S} }}
"""


def make_records(rng: random.Random, count: int, first: int) -> list[list[str]]:
    """Records of one to six lines: a start line and stack-trace-like continuations."""
    records = []
    for i in range(first, first + count):
        body = [f"\tat com.x.C{i}.m{j}(C.java:{j})" for j in range(rng.randrange(6))]
        records.append([f"REC {i} ERROR failed", *body])
    return records


def append(path: Path, lines: list[str]) -> None:
    with path.open("a") as fh:
        fh.write("".join(line + "\n" for line in lines))


def wait_records(d: Daemon, count: int) -> None:
    wait_for(lambda: outbox_line_count(d.outbox) >= count, 30, f"records out\n{d.stderr()}")


@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_during_multiline_records_delivers_each_record_once_and_whole(
    make_daemon: MakeDaemon, tmp_path: Path, workers: int
) -> None:
    rng = random.Random(7 + workers)
    conf = inputs_config(tmp_path / "conf", MULTILINE, workers=workers)
    d = make_daemon(config=conf)
    d.inbox.mkdir(parents=True)
    path = d.inbox / "app.log"
    written: list[list[str]] = []
    for round_ in range(4):
        d.start()
        records = make_records(rng, 300, round_ * 1000)
        quiet = round_ % 2 == 0
        cut = len(records) - 1 if quiet else rng.randrange(len(records))
        for rec in records[:cut]:  # a stream, written record by record in bursts
            append(path, rec)
            if rng.random() < 0.05:
                pause(0.01)
        if quiet:  # everything out first: the half-written record is then held, unread
            wait_records(d, len(written) + cut)
        last = [*records[cut], "\tat tail(T.java:1)"]
        append(path, last[:1])
        pause(0.05)
        d.kill()  # mid-stream in odd rounds
        append(path, last[1:])  # the rest arrives while the daemon is down
        for rec in records[cut + 1 :]:
            append(path, rec)
        written += [*records[:cut], last, *records[cut + 1 :]]
    d.start()
    expected = Counter(" | ".join(rec) for rec in written)
    wait_records(d, len(written))
    d.stop()
    assert outbox_counter(d.outbox) == expected


def test_read_from_end_for_files_of_the_first_start_only(tmp_path: Path) -> None:
    inputs = '\n[[inputs]]\nmatch = "app/*.log"\nread_from = "end"\n'
    conf = inputs_config(tmp_path / "conf", inputs)
    inbox = tmp_path / "inbox"
    (inbox / "app").mkdir(parents=True)
    append(inbox / "app" / "old.log", ["old 1", "old 2"])
    append(inbox / "other.log", ["other 1"])  # no rule: from its beginning
    once = ["--once", "--config", str(conf), *dir_args(tmp_path)]

    first = run_cli(*once)
    assert first.returncode == 0, first.stderr
    out = read_outbox(tmp_path / "outbox")
    assert out == {"other.log": ["other 1"], "app/old.log": []}  # tracked, nothing read

    append(inbox / "app" / "old.log", ["old 3"])
    append(inbox / "app" / "new.log", ["new 1", "new 2"])  # made after the first start
    second = run_cli(*once)
    assert second.returncode == 0, second.stderr
    assert read_outbox(tmp_path / "outbox") == {
        "other.log": ["other 1"],
        "app/old.log": ["old 3"],
        "app/new.log": ["new 1", "new 2"],
    }


def test_multiline_with_two_workers_routes_records(tmp_path: Path) -> None:
    conf = inputs_config(tmp_path / "conf", MULTILINE, workers=2)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    append(inbox / "app.log", ["REC 1 a", "\tat x", "\tat y", "REC 2 b", "REC 3 c", "\tat z"])
    append(inbox / "plain.txt", ["REC 1 a", "\tat x"])
    done = run_cli("--once", "--config", str(conf), *dir_args(tmp_path))
    assert done.returncode == 0, done.stderr
    assert read_outbox(tmp_path / "outbox") == {
        "app.log": ["REC 1 a | \tat x | \tat y", "REC 2 b", "REC 3 c | \tat z"],
        "plain.txt": ["REC 1 a", "\tat x"],
    }


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ('[[inputs]]\nmatch = "*.log"\nmultiline = { start = "([" }\n', ["multiline.start"]),
        ('[[inputs]]\nmatch = "*.log"\nread_from = "middle"\n', ["read_from", "middle"]),
        ('[[inputs]]\nmatch = "*.log"\nfollow = true\n', ["follow", "unknown key"]),
        ("[[inputs]]\nmatch = 3\n", ["match"]),
        ("inputs = 3\n", ["inputs"]),
    ],
)
def test_bad_inputs_config_exits_2_with_one_line(
    tmp_path: Path, inputs: str, words: list[str]
) -> None:
    conf = tmp_path / "inboxd.toml"
    conf.write_text(inputs)
    done = run_cli("--once", "--config", str(conf), *dir_args(tmp_path))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for word in [str(conf), *words]:
        assert word in lines[0], (word, lines[0])


DEADLY_MODULE = '''\
import os


def mark(line):
    """Kills the interpreter (the daemon's, or a worker's) on a marked record, as a crash
    in C code would."""
    if "KILL-ME" in line:
        os._exit(70)
    yield "end", line.replace("\\n", " | ")
'''


@pytest.mark.parametrize("workers", [1, 2])
def test_a_record_that_kills_its_process_is_dead_lettered_with_its_first_line(
    make_daemon: MakeDaemon, tmp_path: Path, workers: int
) -> None:
    conf = inputs_config(tmp_path / "conf", MULTILINE, workers=workers, poison_after=2)
    (tmp_path / "conf" / "mark.py").write_text(DEADLY_MODULE)
    d = make_daemon(config=conf)
    d.inbox.mkdir(parents=True)
    records = make_records(random.Random(3), 40, 0)
    records[25] = ["REC 25 ERROR failed", "\tat KILL-ME(K.java:1)", "\tat x(X.java:2)"]
    append(d.inbox / "app.log", [line for rec in records for line in rec])
    first_line = 1 + sum(len(rec) for rec in records[:25])
    expected = Counter(" | ".join(rec) for i, rec in enumerate(records) if i != 25)
    restarts = 0
    deadline = time.monotonic() + 60
    d.spawn()
    while not (d.is_running() and outbox_counter(d.outbox) == expected and d.is_healthy()):
        assert time.monotonic() < deadline, f"records not delivered\n{d.stderr()}"
        if not d.is_running():
            assert d.wait_exit() == 70, d.stderr()
            restarts += 1
            assert restarts <= 3, "not quarantined in time"
            d.spawn()  # as systemd's Restart=on-failure does
        pause(0.05)
    dead = wait_for(lambda: d.get("/deadletter"), 20, "the dead letter")
    d.stop()
    assert [(x["line_no"], x["processor"]) for x in dead] == [(first_line, "mark")]
    assert "KILL-ME" in dead[0]["line"] and "\n" in dead[0]["line"]
    # One worker: the daemon dies and is restarted; two: a worker dies, the daemon lives.
    assert restarts == (2 if workers == 1 else 0)
    killed = "the daemon" if workers == 1 else "a worker"
    assert dead[0]["message"].startswith(f"Poison: {killed} stopped 2 times"), dead[0]


FAILING_MODULE = '''\
def mark(line):
    """Fails on a marked record; passes every other one, joined."""
    if "BAD" in line:
        raise ValueError("bad record")
    yield "end", line.replace("\\n", " | ")
'''


@pytest.mark.parametrize("workers", [1, 2])
def test_errors_name_the_record_and_its_first_line(tmp_path: Path, workers: int) -> None:
    conf = inputs_config(tmp_path / "conf", MULTILINE, workers=workers)
    (tmp_path / "conf" / "mark.py").write_text(FAILING_MODULE)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    lines = ["REC 1 a", "\tat x", "REC 2 b", "\tat y", "\tat z", "REC 3 BAD", "\tat w", "REC 4"]
    append(inbox / "app.log", lines)
    done = run_cli("--once", "--config", str(conf), *dir_args(tmp_path))
    assert done.returncode == 0, done.stderr
    assert read_outbox(tmp_path / "outbox") == {
        "app.log": ["REC 1 a | \tat x", "REC 2 b | \tat y | \tat z", "REC 4"]
    }
    db = sqlite3.connect(tmp_path / "var" / "inboxd.db")
    try:
        rows = db.execute("SELECT processor, line_no, line FROM errors").fetchall()
    finally:
        db.close()
    assert rows and {(p, n, line) for p, n, line in rows} == {("mark", 6, "REC 3 BAD\n\tat w")}
