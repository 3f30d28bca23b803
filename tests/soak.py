"""The soak driver: random `kill -9` while lines are appended, the real `logrotate` in
both its modes (then again with a `kill -9` after each rotation), the copytruncate race
(logrotate every 0.5 s with `size 1k`, 20 runs in a row beside a CPU burner), and a
hostile inbox. Each run prints one summary line; the exit code is 1 when any run lost,
doubled or garbled a line, or the daemon died.

    python tests/soak.py --kills 100 --rotations 10      # `make soak` runs the defaults
    python tests/soak.py --kills 0 --rotations 0 --no-hostile --race-runs 20   # the race only

Importable: tests/test_soak.py runs short versions of the same functions.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Run as a script (`make soak`): inboxd's folders import each other by their own names.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest
from daemon_fixtures import Daemon, outbox_counter, outbox_line_count, pause
from soak_common import LineWriter, Tally, caught_up, passthrough_daemon, settle, tally
from soak_hostile import HostileResult, soak_hostile
from soak_rotate import (
    MODES,
    RotateResult,
    copytruncate_race,
    logrotate_available,
    soak_logrotate,
)

KILL_FILES = ["a.log", "deep/b.log"]
FINAL_TIMEOUT_S = 120.0


@dataclass
class KillResult:
    kills: int
    seed: int
    tally: Tally
    alive: bool
    secs: float

    @property
    def ok(self) -> bool:
        return self.tally.exact and self.alive

    def summary(self) -> str:
        t = self.tally
        return (
            f"soak kills: kills={self.kills} seed={self.seed} written={t.written} "
            f"lost={t.lost} doubled={t.doubled} garbage={t.garbage} "
            f"alive={'yes' if self.alive else 'no'} secs={self.secs:.1f}"
        )


def kill_once(d: Daemon, rng: random.Random, mode: int) -> bool:
    """Start the daemon and `kill -9` it: during start-up and recovery (mode 0), just
    after lines start to flow (1, mostly between an outbox write and its commit), or at
    a random moment of a steady run (2). False when it had died on its own."""
    before = outbox_line_count(d.outbox)
    if mode == 2:
        d.start()
        pause(rng.uniform(0.0, 1.0))
    else:
        d.spawn()
    if mode == 0:
        pause(rng.uniform(0.1, 1.5))
    elif mode == 1:
        settle(lambda: outbox_line_count(d.outbox) > before or not d.is_running(), 30, 0.005)
        pause(rng.uniform(0.0, 0.05))
    alive = d.is_running()
    d.kill()
    return alive


def soak_kills(d: Daemon, kills: int, *, seed: int, rate: float = 2000.0) -> KillResult:
    """`kills` random `kill -9` of `d` (a passthrough pipeline; restarted at once, as
    systemd does) while a writer appends to two files; then one clean run, and the
    outbox compared exactly."""
    started = time.monotonic()
    rng = random.Random(seed)
    writer = LineWriter(d.inbox, KILL_FILES, rate=rate, reopen=False)
    writer.start()
    alive = True
    try:
        for n in range(kills):
            alive = kill_once(d, rng, n % 3) and alive
        written = writer.stop()
        d.start()
        settle(caught_up(d, written), FINAL_TIMEOUT_S, 0.5)
        alive = d.is_running() and alive
        d.stop()
    finally:
        writer.stop()
        d.kill()
    took = time.monotonic() - started
    return KillResult(kills, seed, tally(written, outbox_counter(d.outbox)), alive, took)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--kills", type=int, default=100, help="random kill -9 (100); 0 skips")
    p.add_argument("--rotations", type=int, default=10, help="logrotate runs per mode (10)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between rotations")
    p.add_argument("--rate", type=float, default=2000.0, help="lines a second written")
    p.add_argument(
        "--no-rotation-kills",
        action="store_true",
        help="skip the runs with kill -9 after each rotation",
    )
    p.add_argument("--race-runs", type=int, default=20,
                   help="copytruncate race runs in a row (20); 0 skips")  # fmt: skip
    p.add_argument("--race-secs", type=float, default=30.0,
                   help="seconds of writing per race run (30)")  # fmt: skip
    p.add_argument("--burn", type=int, default=os.cpu_count() or 1,
                   help="busy-loop processes beside each race run (one per CPU)")  # fmt: skip
    p.add_argument("--no-hostile", action="store_true", help="skip the hostile-inbox run")
    p.add_argument("--seed", type=int, default=None, help="seed of the kill moments")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    return p.parse_args(argv)


Run = Callable[[Path], "KillResult | RotateResult | HostileResult"]


def runs(args: argparse.Namespace) -> list[tuple[str, Run]]:
    """The runs asked for, each a function of its work folder."""
    seed = args.seed if args.seed is not None else time.time_ns() % 1_000_000

    def kills(root: Path) -> KillResult:
        return soak_kills(passthrough_daemon(root), args.kills, seed=seed, rate=args.rate)

    def rotation(mode: str, kills: bool) -> Run:
        def run(root: Path) -> RotateResult:
            rng = random.Random(seed) if kills else None
            return soak_logrotate(passthrough_daemon(root), mode, rotations=args.rotations,
                                  interval=args.interval, rate=args.rate, kills=rng)  # fmt: skip

        return run

    todo: list[tuple[str, Run]] = []
    if args.kills:
        todo.append(("kills", kills))
    if args.rotations:
        if not logrotate_available():
            raise SystemExit("soak: the logrotate binary is not installed (or pass --rotations 0)")
        todo += [(mode, rotation(mode, False)) for mode in MODES]
        if not args.no_rotation_kills:
            todo += [(f"{mode}-kills", rotation(mode, True)) for mode in MODES]
    if args.race_runs and not logrotate_available():
        raise SystemExit("soak: the logrotate binary is not installed (or pass --race-runs 0)")
    todo += [(f"race-{n}", race(args, n)) for n in range(1, args.race_runs + 1)]
    if not args.no_hostile:
        todo.append(("hostile", soak_hostile))
    return todo


def race(args: argparse.Namespace, n: int) -> Run:
    """Run `n` of the copytruncate race."""
    label = (
        f"copytruncate race {n}/{args.race_runs} (size 1k, rotate 1000, every 0.5 s, "
        f"{args.burn} burners)"
    )

    def run(root: Path) -> RotateResult:
        return copytruncate_race(root, secs=args.race_secs, burn=args.burn, label=label)

    return run


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="inboxd-soak-"))
    failed = 0
    try:
        for name, run in runs(args):
            try:
                result = run(work / name.replace("+", "-"))
            except (Exception, pytest.fail.Exception) as exc:  # reported, the next run goes on
                print(f"soak {name}: broke: {type(exc).__name__}: {exc}"[:2000], flush=True)
                failed += 1
                continue
            print(result.summary(), flush=True)
            failed += not result.ok
    finally:
        if args.keep:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
