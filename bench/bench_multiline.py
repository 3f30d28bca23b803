"""Multiline records on against off: `daemon.py --once` over the same Java-style log.

Usage: python bench/bench_multiline.py [--lines N] [--repeat R] [--workers W] [--default]
The log has 80 % one-line entries and 20 % error entries with a stack trace of 3 to 12
lines. The pipeline passes every line (or record) to the outbox unchanged, so the figure
is the reader's and the router's cost, not a processor's (`--default`: the default
pipeline instead, whose processors cost more than the joining). Prints physical lines/s with
multiline off and on, and records/s with it on; the best of R runs each, less the time
of the same command on an empty inbox (interpreter and daemon start-up).
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "multiline"
PASSTHRU = 'def keep(line):\n    yield "end", line\n'
INPUTS = """
[[inputs]]
match = "*.log"
multiline = { start = '^\\d{4}-\\d{2}-\\d{2} ', max_lines = 500, timeout = 1.0 }
"""


def generate(path: Path, lines: int) -> int:
    """Write about `lines` lines; returns the number of records (entries)."""
    rnd = random.Random(42)
    written = records = 0
    with path.open("w") as fh:
        while written < lines:
            records += 1
            n = records
            if rnd.random() < 0.2:
                fh.write(f"2026-12-01 12:00:00 ERROR service-{n % 17} request {n} failed\n")
                fh.write(f"java.lang.IllegalStateException: bad state {n}\n")
                depth = rnd.randint(2, 11)
                for j in range(depth):
                    fh.write(f"\tat com.example.svc.Handler{j}.handle(Handler{j}.java:{j + 10})\n")
                written += depth + 2
            else:
                fh.write(f"2026-12-01 12:00:00 INFO service-{n % 17} request {n} took 12 ms\n")
                written += 1
    return records


def config(folder: Path, *, multiline: bool, workers: int, default: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "passthru.py").write_text(PASSTHRU)
    text = f"[daemon]\nworkers = {workers}\n"
    if not default:
        text += '\n[pipeline]\nstart = "passthru:keep"\n'
    path = folder / "inboxd.toml"
    path.write_text(text + (INPUTS if multiline else ""))
    return path


def run_once(conf: Path, inbox: Path, run: Path) -> float:
    shutil.rmtree(run, ignore_errors=True)
    args = [sys.executable, "daemon.py", "--once", "--config", str(conf), "--inbox", str(inbox),
            "--outbox", str(run / "outbox"), "--state-dir", str(run / "var")]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - t0


def best(conf: Path, inbox: Path, repeat: int) -> float:
    return min(run_once(conf, inbox, OUT / "run") for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--default", action="store_true", help="the default pipeline")
    args = parser.parse_args()
    shutil.rmtree(OUT, ignore_errors=True)
    inbox, empty = OUT / "inbox", OUT / "empty"
    inbox.mkdir(parents=True)
    empty.mkdir()
    records = generate(inbox / "app.log", args.lines)
    lines = sum(1 for _ in (inbox / "app.log").open("rb"))
    size_mb = (inbox / "app.log").stat().st_size / 1e6
    pipeline = "default" if args.default else "passthrough"
    print(f"input: {lines} lines, {records} records, {size_mb:.1f} MB; workers {args.workers}, "
          f"{pipeline} pipeline")  # fmt: skip
    for multiline in (False, True):
        conf = config(OUT / ("on" if multiline else "off"), multiline=multiline,
                      workers=args.workers, default=args.default)  # fmt: skip
        start_up = best(conf, empty, args.repeat)
        took = best(conf, inbox, args.repeat) - start_up
        label = "multiline on " if multiline else "multiline off"
        extra = f", {records / took:,.0f} records/s" if multiline else ""
        print(f"{label}: {took:.2f} s, {lines / took:,.0f} lines/s{extra}"
              f" (start-up {start_up:.2f} s subtracted)")  # fmt: skip
    shutil.rmtree(OUT, ignore_errors=True)


if __name__ == "__main__":
    main()
