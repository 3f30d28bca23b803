"""Engine throughput: `daemon.py --once` against a bare Python loop running the same processors.

Usage: python bench/bench_engine.py [--lines N] [--repeat R]
Prints lines/s for both, their ratio, with tracing off and on. Figures, not assertions.
Both run as fresh processes, so both pay an interpreter start; inboxd's figure is also
given without its start-up (the same command on an empty inbox).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from procs import CONFIG, PIPELINE  # noqa: E402

LEVELS = ("INFO",) * 7 + ("WARN",) * 2 + ("ERROR",)


def generate(path: Path, n: int) -> None:
    rnd = random.Random(42)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for i in range(n):
            level = rnd.choice(LEVELS)
            took = rnd.randint(1, 999)
            fh.write(f"2026-11-27T12:00:00Z {level} service-{i % 17} request {i} took {took} ms\n")


def bare_loop(src: Path, dst: Path) -> float:
    """The naive loop a user would write: recursive routing, one write per line."""
    procs = PIPELINE
    t0 = time.perf_counter()
    with src.open(encoding="utf-8", errors="replace") as fin, dst.open("w") as fout:
        write = fout.write

        def route(tag: str, line: str) -> None:
            for t, out in procs[tag](line):
                if t == "end":
                    write(out + "\n")
                else:
                    route(t, out)

        for raw in fin:
            route("start", raw.rstrip("\n"))
        fout.flush()
        os.fsync(fout.fileno())
    return time.perf_counter() - t0


def run_bare(src: Path, dst: Path) -> float:
    """Wall time of the bare loop in a fresh interpreter, like the daemon's run."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--bare", str(src), str(dst)], check=True)
    return time.perf_counter() - t0


def run_inboxd(work: Path, trace: bool) -> tuple[float, float]:
    """Wall time of `daemon.py --once` on the inbox, and of the same run on an empty inbox."""
    times = []
    for inbox in (work / "inbox", work / "empty"):
        inbox.mkdir(exist_ok=True)
        for d in ("outbox", "var"):
            shutil.rmtree(work / d, ignore_errors=True)
        cmd = [sys.executable, str(ROOT / "daemon.py"), "--once", "--inbox", str(inbox),
               "--outbox", str(work / "outbox"), "--state-dir", str(work / "var"),
               "--config", str(work / "bench.toml")]  # fmt: skip
        if trace:
            cmd.append("--trace")
        env = dict(os.environ, PYTHONPATH=str(HERE))
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
        if inbox.name == "inbox":
            produced = (work / "outbox" / "app.log").read_bytes()
            expected = (work / "bare.out").read_bytes()
            if produced != expected:
                raise SystemExit("inboxd output differs from the bare loop's")
    return times[0], times[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", type=Path, default=HERE / "out" / "engine")
    ap.add_argument("--bare", nargs=2, type=Path, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare:
        bare_loop(*args.bare)
        return
    work: Path = args.work
    shutil.rmtree(work, ignore_errors=True)
    src = work / "inbox" / "app.log"
    generate(src, args.lines)
    (work / "bench.toml").write_text(CONFIG)
    n = args.lines
    bare = min(run_bare(src, work / "bare.out") for _ in range(args.repeat))
    print(f"lines: {n:,}  ({src.stat().st_size / 1e6:.1f} MB)")
    print(f"bare loop:              {n / bare:>12,.0f} lines/s  ({bare:.2f} s)")
    for trace in (False, True):
        runs = [run_inboxd(work, trace) for _ in range(args.repeat)]
        wall, empty = min(r[0] for r in runs), min(r[1] for r in runs)
        label = "on " if trace else "off"
        print(
            f"inboxd --once trace {label}: {n / wall:>12,.0f} lines/s  ({wall:.2f} s)  "
            f"ratio {bare / wall:.2f}x; without start-up ({empty:.2f} s): "
            f"{n / (wall - empty):,.0f} lines/s, ratio {bare / (wall - empty):.2f}x"
        )


if __name__ == "__main__":
    main()
