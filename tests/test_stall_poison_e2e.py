"""User code that hangs or kills the process, against the daemon as a subprocess.

A hung processor turns /health `failing` (503) naming the processor, file and line, and
WATCHDOG=1 stops while it hangs; a slow one never does. A line on which the process dies
(`os._exit` inside a processor) is quarantined as a dead letter within `poison_after`
restarts, and every other line is delivered exactly once.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from pathlib import Path

import httpx
from daemon_fixtures import Daemon, MakeDaemon, outbox_counter, write_config
from net_fixtures import wait_for
from notify_fixtures import NotifyListener, max_gap

RULES = '''\
import os
import time


def sleepy(line):
    """Hangs on lines holding SLEEP, for as many seconds as the line says."""
    if line.startswith("SLEEP"):
        time.sleep(float(line.split()[1]))
    return [("end", line)]


def slow(line):
    time.sleep(0.01)
    return [("end", line)]


def deadly(line):
    """Kills the interpreter on a marked line, as a crash in C code would."""
    if "KILL-ME" in line:
        os._exit(70)
    return [("end", line)]
'''


def config(tmp_path: Path, start: str, **daemon: object) -> Path:
    folder = tmp_path / "conf"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules.py").write_text(RULES)
    return write_config(folder, pipeline=f'start = "rules:{start}"', **daemon)


def health_of(url: str) -> tuple[int, dict[str, object]]:
    r = httpx.get(url + "/health", timeout=5)
    return r.status_code, r.json()


def test_a_hung_processor_is_failing_and_stops_the_watchdog(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    sock = tmp_path / "n.sock"
    d = make_daemon(
        config=config(tmp_path, "sleepy", stall_timeout=2),
        env={"NOTIFY_SOCKET": str(sock), "WATCHDOG_USEC": "1500000"},
    )
    listener = NotifyListener(sock, lambda: d.url)
    try:
        d.start()
        (d.inbox / "a.log").write_text("first\nsecond\nSLEEP 6\nafter\n")
        began = time.monotonic()
        _, doc = wait_for(lambda: (r := health_of(d.url))[0] == 503 and r, 15, "503")
        to_503 = time.monotonic() - began
        engine = doc["checks"]["engine"]
        assert engine["status"] == "failing"
        assert engine["processor"] == "sleepy" and engine["file"] == "a.log"
        assert engine["line_no"] == 3 and engine["seconds"] >= 2
        stalled_at = time.monotonic()
        wait_for(lambda: health_of(d.url)[0] == 200, 15, "healthy once it returns")
        recovered_at = time.monotonic()
        wait_for(lambda: outbox_counter(d.outbox) == Counter(
            ["first", "second", "SLEEP 6", "after"]), 10, "all four lines")  # fmt: skip
        d.stop()
    finally:
        d.kill()
        listener.close()
    pings = listener.times_of("WATCHDOG=1")
    assert max_gap(pings, stalled_at, recovered_at - 0.3) >= recovered_at - stalled_at - 1.0
    print(f"stall to 503: {to_503:.2f} s (stall_timeout 2 s)")


def test_a_slow_processor_is_never_failing_and_keeps_the_watchdog(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    sock = tmp_path / "n.sock"
    d = make_daemon(
        config=config(tmp_path, "slow", stall_timeout=1),
        env={"NOTIFY_SOCKET": str(sock), "WATCHDOG_USEC": "1500000"},
    )
    listener = NotifyListener(sock, lambda: d.url)
    try:
        d.start()
        lines = [f"slow {i}" for i in range(400)]  # one chunk of about 4 s
        (d.inbox / "a.log").write_text("".join(x + "\n" for x in lines))
        began = time.monotonic()
        codes = []
        while outbox_counter(d.outbox) != Counter(lines):
            codes.append(health_of(d.url)[0])
            assert time.monotonic() - began < 30, "slow lines not delivered"
            time.sleep(0.1)
        ended = time.monotonic()
        d.stop()
    finally:
        d.kill()
        listener.close()
    assert set(codes) == {200}
    assert ended - began > 2, "the chunk should have taken longer than stall_timeout"
    assert max_gap(listener.times_of("WATCHDOG=1"), began, ended) < 1.2


def test_a_line_that_kills_the_process_is_quarantined(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    d = make_daemon(config=config(tmp_path, "deadly", poison_after=3))
    lines = [f"line {i}" for i in range(5000)]
    lines[3210] = "line 3210 KILL-ME password=hunter2"
    d.inbox.mkdir(parents=True, exist_ok=True)
    (d.inbox / "a.log").write_text("".join(x + "\n" for x in lines))
    expected = Counter(lines[:3210] + lines[3211:])
    restarts = 0
    d.spawn()
    while not delivered_unless_dead(d, expected):
        code = d.wait_exit(10)
        assert code == 70, f"exit {code}:\n{d.stderr()}"
        restarts += 1
        assert restarts <= 4, "not quarantined in time"
        d.spawn()  # as systemd's Restart=on-failure does
    # The engine starts before the API: the outbox can be complete before /health answers.
    wait_for(d.is_healthy, 30, "the API serving")
    dead = wait_for(lambda: d.get("/deadletter"), 20, "the dead letter")
    d.stop()
    assert [(x["line_no"], x["processor"]) for x in dead] == [(3211, "deadly")]
    assert dead[0]["message"].startswith("Poison: the daemon stopped 3 times")
    assert "KILL-ME" in dead[0]["line"] and "hunter2" not in dead[0]["line"]
    assert restarts == 3
    db = sqlite3.connect(d.state_dir / "inboxd.db")
    assert db.execute("SELECT count(*) FROM deadletter").fetchone()[0] == 1
    db.close()
    print(f"restarts until the poison line was quarantined: {restarts}")


def delivered_unless_dead(d: Daemon, expected: Counter[str]) -> bool:
    """True once the outbox holds `expected`; False when the process died first."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not d.is_running():
            return False
        if outbox_counter(d.outbox) == expected:
            return True
        time.sleep(0.05)
    raise AssertionError(f"neither delivered nor dead in 30 s:\n{d.stderr()}")
