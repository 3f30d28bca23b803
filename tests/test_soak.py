"""Short versions of the soak runs (`make soak` runs the long ones): random `kill -9`
while lines are appended, the real logrotate in both modes, the hostile inbox."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
from daemon_fixtures import MakeDaemon, write_config
from soak import soak_kills
from soak_hostile import soak_hostile
from soak_rotate import MODES, copytruncate_race, logrotate_available, soak_logrotate

KILLS = 5
ROTATIONS = 2
RACE_SECS = 8.0


@pytest.mark.slow
def test_kill_9_while_appending_loses_and_doubles_nothing(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    seed = int(os.environ.get("INBOXD_SOAK_SEED", time.time_ns() % 1_000_000))
    d = make_daemon(config=write_config(tmp_path / "conf"))
    r = soak_kills(d, KILLS, seed=seed)
    print(r.summary())
    assert r.alive, d.stderr()
    assert r.tally.written > 0
    assert r.tally.exact, (r.summary(), r.tally.lost_examples, r.tally.garbage_examples)
    assert d.starts == KILLS + 1


@pytest.mark.slow
@pytest.mark.skipif(not logrotate_available(), reason="the logrotate binary is not installed")
@pytest.mark.parametrize("mode", MODES)
def test_logrotate_soak_loses_and_doubles_nothing(
    tmp_path: Path, make_daemon: MakeDaemon, mode: str
) -> None:
    d = make_daemon(config=write_config(tmp_path / "conf"))
    r = soak_logrotate(d, mode, rotations=ROTATIONS, interval=1.0, rate=2000.0)
    print(r.summary())
    assert r.alive, d.stderr()
    assert r.ok, (r.summary(), r.examples)


@pytest.mark.slow
@pytest.mark.skipif(not logrotate_available(), reason="the logrotate binary is not installed")
def test_logrotate_create_with_kill_9_after_each_rotation(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    d = make_daemon(config=write_config(tmp_path / "conf"))
    rng = random.Random(int(os.environ.get("INBOXD_SOAK_SEED", time.time_ns() % 1_000_000)))
    r = soak_logrotate(
        d, "create+compress", rotations=ROTATIONS, interval=1.0, rate=2000.0, kills=rng
    )
    print(r.summary())
    assert r.ok, (r.summary(), r.examples)
    assert r.lost_by_logrotate == 0, r.summary()
    assert d.starts == ROTATIONS + 1


@pytest.mark.slow
@pytest.mark.skipif(not logrotate_available(), reason="the logrotate binary is not installed")
def test_copytruncate_race_beside_a_cpu_burner_doubles_nothing(tmp_path: Path) -> None:
    """logrotate every 0.5 s (size 1k, rotate 1000) on a busy machine: the reader often
    reads the original past the point logrotate copied it before the cut."""
    r = copytruncate_race(tmp_path, secs=RACE_SECS, burn=os.cpu_count() or 1, label="race")
    print(r.summary())
    assert r.rotations > 0 and r.written > 0
    assert r.ok, (r.summary(), r.examples)


@pytest.mark.slow
def test_hostile_inbox_keeps_the_daemon_up_and_good_lines_exact(tmp_path: Path) -> None:
    r = soak_hostile(tmp_path)
    print(r.summary())
    assert r.alive
    assert r.tally.exact, (r.summary(), r.tally.lost_examples, r.tally.garbage_examples)
    assert not r.missing_errors, (r.summary(), r.errors_shown)
    assert all(r.errors_shown[p] for p in r.errors_expected), r.errors_shown
    assert r.long_line_reported, "the 2 MiB line was not recorded as an error of `inbox`"
    assert r.odd_name_kept, "a non-UTF-8 name: no outbox file of the same bytes, or not in /files"


def test_make_soak_runs_the_script_from_anywhere(tmp_path: Path) -> None:
    """`make soak` runs tests/soak.py as a script, with no test runner to set the path."""
    import subprocess
    import sys

    from daemon_fixtures import REPO

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    script = str(REPO / "tests" / "soak.py")
    done = subprocess.run([sys.executable, script, "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and "--race-runs" in done.stdout, done.stderr
