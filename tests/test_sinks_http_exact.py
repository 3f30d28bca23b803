"""The http sink's promise (SPEC 12), end to end through daemon.py and a real receiver:
each line is posted once when nothing fails, a line repeats only under the same
Idempotency-Key after a crash, and the pending figure never goes below 0.

The processor sends each line to the outbox first and then to the sink, so a new outbox
file is started (in a small commit of its own) while the sink's lines of the same commit
wait: a regression spooled those lines once more for every outbox file started.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from daemon_fixtures import MakeDaemon, pause, read_outbox
from http_exact_fixtures import (
    KillingReceiver,
    config,
    deduped,
    hook_figures,
    keys_per_line,
    lines_of,
    pid_of,
    received,
    run_once,
    write,
)
from net_fixtures import wait_for

WORKERS = pytest.mark.parametrize("workers", [1, 2])


@pytest.fixture
def hook() -> Iterator[KillingReceiver]:
    r = KillingReceiver()
    yield r
    r.close()


@WORKERS
@pytest.mark.parametrize(("files", "per_file"), [(3, 3), (20, 4)])
def test_once_posts_each_line_of_many_new_files_once(
    tmp_path: Path, hook: KillingReceiver, workers: int, files: int, per_file: int
) -> None:
    """Several new files whose lines fit one batch (100): one --once run."""
    conf = config(tmp_path / "conf", hook.url)
    want = {f"f{j:02d}.log": write(tmp_path / "inbox" / f"f{j:02d}.log", 0, per_file)
            for j in range(files)}  # fmt: skip
    every = Counter(x for lines in want.values() for x in lines)
    done = run_once(tmp_path, conf, workers)
    assert done.returncode == 0, done.stderr
    assert received(hook) == every, "the receiver got a line other than once (no dedup)"
    keys = [r.key for r in hook.requests]
    assert len(keys) == len(set(keys)) and hook.accepted == hook.requests
    hook.check_keys()
    assert read_outbox(tmp_path / "outbox") == want
    stats = json.loads(done.stdout)
    assert stats["both"]["count"] == files * per_file
    assert stats["both"]["errors"] == 0 and stats["both"]["retries"] == 0


@WORKERS
def test_live_burst_of_new_files_pending_never_negative(
    tmp_path: Path, make_daemon: MakeDaemon, hook: KillingReceiver, workers: int
) -> None:
    """40 files renamed into the inbox together while /sinks and /metrics are polled."""
    d = make_daemon(config=config(tmp_path / "conf", hook.url), extra_args=["--workers",
                    str(workers)])  # fmt: skip
    hook.plan = [("sleep", 0.05)] * 10  # a slowish receiver: ~0.5 s of delivery to watch
    d.start()
    staging = tmp_path / "staging"
    want = {f"f{j:02d}.log": write(staging / f"f{j:02d}.log", 0, 25) for j in range(40)}
    sent = sum(map(len, want.values()))
    d.inbox.mkdir(parents=True, exist_ok=True)
    for name in want:
        (staging / name).rename(d.inbox / name)
    samples: list[tuple[int, int, float]] = []

    def settled() -> bool:
        samples.append(hook_figures(d))
        pending, lines, _ = samples[-1]
        return lines >= sent and pending <= 0  # ends at once if too much went out

    wait_for(settled, 30, "every line acknowledged", interval=0.02)
    negative = [s for s in samples if s[0] < 0 or s[2] < 0]
    assert not negative, f"pending below 0 (pending, lines, metric): {negative[:5]}"
    assert samples[-1] == (0, sent, 0.0), "at the end: pending 0, lines == lines sent"
    assert any(0 < s[1] < sent for s in samples), "polled while delivering"
    d.stop()
    assert received(hook) == Counter(x for v in want.values() for x in v), "each line once"
    hook.check_keys()
    assert read_outbox(d.outbox) == want


@WORKERS
def test_kill_9_between_post_and_commit_resends_the_same_batch(
    tmp_path: Path, make_daemon: MakeDaemon, hook: KillingReceiver, workers: int
) -> None:
    """The third POST kills the daemon before it is answered: the restarted daemon's first
    POST is that batch again, same key and same lines; the only repeats are its lines."""
    d = make_daemon(config=config(tmp_path / "conf", hook.url), extra_args=["--workers",
                    str(workers)])  # fmt: skip
    want = [x for j in range(3) for x in write(d.inbox / f"f{j}.log", 0, 300)]
    hook.plan = [("status", 200, {})] * 2 + [("kill", pid_of(d))]
    d.spawn()
    wait_for(lambda: hook.killed, 20, "the POST that kills the daemon")
    d.wait_exit()
    killed = hook.killed[0]
    sent_before = len(hook.requests)
    assert sent_before == 3 and len(hook.accepted) == 2
    acked = sum(len(lines_of(r)) for r in hook.accepted)
    d.start()
    wait_for(lambda: deduped(hook).total() >= len(want), 30, "as many lines as sent")
    assert deduped(hook) == Counter(want), "deduped by key: every line once"
    assert hook.requests[sent_before].key == killed.key, "the retry's Idempotency-Key"
    assert hook.requests[sent_before].body == killed.body, "the retry's lines"
    settled = (0, len(want) - acked, 0.0)  # lines: counted since this start
    wait_for(lambda: hook_figures(d) == settled, 10, f"/sinks and /metrics at {settled}")
    d.stop()
    hook.check_keys()
    assert received(hook) - deduped(hook) == Counter(lines_of(killed)), "only it repeats"
    assert Counter(r.key for r in hook.requests) - Counter(r.key for r in hook.accepted) == {
        killed.key: 1
    }
    assert all(len(keys) == 1 for keys in keys_per_line(hook).values())


def test_kill_9_in_a_loop_every_line_once_per_key(
    tmp_path: Path, make_daemon: MakeDaemon, hook: KillingReceiver
) -> None:
    """Five kill -9 at random moments of ingesting 5,000 lines (appends and new files):
    odd rounds inside a POST, even rounds from outside; deduped by key, each line once."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    d = make_daemon(config=config(tmp_path / "conf", hook.url))
    want: dict[str, list[str]] = {}
    for round_no in range(5):
        for name, count in [("a", 200), ("b", 200), ("c", 200), (f"new{round_no}", 400)]:
            have = want.setdefault(f"{name}.log", [])
            have += write(d.inbox / f"{name}.log", len(have), len(have) + count)
        before, kills = len(hook.requests), len(hook.killed)
        if round_no % 2:
            with hook.lock:
                hook.plan = [("status", 200, {})] * rng.randint(0, 4) + [("kill", pid_of(d))]
            d.spawn()
            wait_for(partial(grew, hook.killed, kills), 30, f"a kill in a POST (seed {seed})")
            d.wait_exit()
        else:
            d.spawn()
            wait_for(partial(grew, hook.requests, before), 30, f"a POST (seed {seed})")
            pause(rng.uniform(0, 0.25))
            d.kill()
    with hook.lock:
        hook.plan = []
    every = Counter(x for lines in want.values() for x in lines)
    d.start()
    wait_for(lambda: deduped(hook).total() >= 5000, 40, f"5,000 lines (seed {seed})")
    assert deduped(hook) == every, f"deduped by key: every line once (seed {seed})"
    wait_for(lambda: hook_figures(d)[0::2] == (0, 0.0), 10, "pending 0")
    d.stop()
    hook.check_keys()
    assert len(hook.killed) == 2
    spread = {x: k for x, k in keys_per_line(hook).items() if len(k) > 1}
    assert not spread, f"a line under two keys (seed {seed}): {list(spread)[:3]}"
    assert sum(every.values()) == 5000 and read_outbox(d.outbox) == want


def grew(items: list[Any], than: int) -> bool:
    return len(items) > than
