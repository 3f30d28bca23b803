"""Crash safety: `kill -9` at random moments while ingesting, restart, and at the end
every line the processors must produce is in the outbox exactly once."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest
from daemon_fixtures import (
    Daemon,
    MakeDaemon,
    outbox_counter,
    outbox_line_count,
    pause,
    write_config,
)
from net_fixtures import wait_for

TOTAL_LINES = 200_000
FILES = ("a.log", "deep/b.log")
KILLS = 8
FINAL_TIMEOUT_S = 90.0

# Deterministic fan-out, drops and a second hop, so that the expected outbox is computable.
PIPELINE_MODULE = """\
def split(line):
    seq = int(line.split()[1])
    if seq % 7 == 0:
        return
    if seq % 5 == 0:
        yield "shout", line
    else:
        yield "end", line
    if seq % 3 == 0:
        yield "end", line + " copy"


def shout(line):
    yield "end", line.upper()
"""


def expected_out(line: str) -> list[str]:
    seq = int(line.split()[1])
    if seq % 7 == 0:
        return []
    out = [line.upper() if seq % 5 == 0 else line]
    if seq % 3 == 0:
        out.append(line + " copy")
    return out


def plan_appends(rng: random.Random, rounds: int) -> list[list[tuple[str, bytes]]]:
    """The lines of every file cut into `rounds` appends at random byte positions."""
    per_file = TOTAL_LINES // len(FILES)
    plans: list[list[tuple[str, bytes]]] = [[] for _ in range(rounds)]
    for n, name in enumerate(FILES):
        seqs = range(n * per_file, (n + 1) * per_file)
        data = "".join(f"{name} {seq:07d} {'x' * (seq % 23)}\n" for seq in seqs).encode()
        cuts = sorted(rng.sample(range(1, len(data)), rounds - 1))
        for r, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, len(data)], strict=True)):
            plans[r].append((name, data[lo:hi]))
    return plans


def write_round(inbox: Path, appends: list[tuple[str, bytes]]) -> None:
    for name, data in appends:
        path = inbox / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as fh:
            fh.write(data)


def expected_counter(inbox: Path) -> Counter[str]:
    expected: Counter[str] = Counter()
    for name in FILES:
        for line in (inbox / name).read_text().splitlines():
            expected.update(expected_out(line))
    return expected


def crash_round(d: Daemon, rng: random.Random, mode: int, appends: list[tuple[str, bytes]]) -> None:
    """One round ending in SIGKILL: during start-up and recovery, or while lines flow."""
    before = outbox_line_count(d.outbox)
    if mode == 2:
        d.start()
        write_round(d.inbox, appends)  # written while it runs
    else:
        write_round(d.inbox, appends)  # written while it is down
        d.spawn()
    if mode == 0:
        pause(rng.uniform(0.1, 1.5))
    else:
        # A batch takes a fraction of a second: kill soon after its first lines show, so
        # that most kills land between an outbox write and its checkpoint commit.
        wait_for(lambda: outbox_line_count(d.outbox) > before, 30, "lines flowing", 0.005)
        pause(rng.uniform(0.0, 0.05))
    assert d.returncode() is None, f"daemon died on its own:\n{d.stderr()}"
    d.kill()


@pytest.mark.slow
def test_kill_9_loop_delivers_every_line_exactly_once(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    seed = int(os.environ.get("INBOXD_CRASH_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "crashpipe.py").write_text(PIPELINE_MODULE)
    config = write_config(
        conf,
        # Appends are cut mid-line: a waiting partial line must never be emitted here.
        partial_timeout=600,
        pipeline='start = "crashpipe:split"\nshout = "crashpipe:shout"',
    )
    d = make_daemon(config=config)
    plans = plan_appends(rng, KILLS + 1)
    started = time.monotonic()
    at_kills: list[int] = []
    for kill_no, appends in enumerate(plans[:KILLS]):
        crash_round(d, rng, kill_no % 3, appends)
        at_kills.append(outbox_line_count(d.outbox))
    write_round(d.inbox, plans[KILLS])
    expected = expected_counter(d.inbox)
    total = sum(expected.values())
    d.start()
    wait_for(
        lambda: outbox_line_count(d.outbox) >= total,
        FINAL_TIMEOUT_S,
        f"{total} outbox lines (seed {seed})",
        interval=0.5,
    )
    d.stop()
    got = outbox_counter(d.outbox)
    missing, doubled = expected - got, got - expected
    assert not missing and not doubled, (
        f"seed {seed}: {sum(missing.values())} lost, e.g. {list(missing)[:3]}; "
        f"{sum(doubled.values())} extra, e.g. {list(doubled)[:3]}"
    )
    assert d.starts == KILLS + 1
    took = time.monotonic() - started
    print(f"crash loop (seed {seed}): {KILLS} kills with {at_kills} outbox lines, "
          f"{total} lines in the end, {took:.1f} s")  # fmt: skip
