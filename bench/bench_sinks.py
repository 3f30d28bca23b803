"""What sinks cost: `daemon.py --once` over the same log with the outbox only, then with
one, two file sinks, and a sqlite sink taking every line besides the outbox.

Usage: python bench/bench_sinks.py [--lines N] [--repeat R]
Every line goes to the outbox and to each sink of the run, so a sink's cost is the
difference to the run before it. Prints lines/s per run (best of R runs, less the time of
the same command on an empty inbox). The http sink's own figure is bench_httpsink.py's.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bench_multiline import run_once  # the same timed `daemon.py --once`

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "sinks"
RUNS: dict[str, list[str]] = {
    "outbox only": [],
    "+1 file sink": ["a"],
    "+2 file sinks": ["a", "b"],
    "+1 sqlite sink": ["rows"],
}


def config(folder: Path, sinks: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    emits = "".join(f'    yield "{s}", line\n' for s in sinks)
    (folder / "fanout.py").write_text(f'def go(line):\n{emits}    yield "end", line\n')
    text = '[pipeline]\nstart = "fanout:go"\n'
    for s in sinks:
        if s == "rows":
            text += '\n[sinks.rows]\ntype = "sqlite"\npath = "rows.db"\n'
        else:
            text += f'\n[sinks.{s}]\ntype = "file"\npath = "{s}/{{file}}"\n'
    path = folder / "inboxd.toml"
    path.write_text(text)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shutil.rmtree(OUT, ignore_errors=True)
    inbox, empty = OUT / "inbox", OUT / "empty"
    inbox.mkdir(parents=True)
    empty.mkdir()
    with (inbox / "app.log").open("w") as fh:
        for n in range(args.lines):
            fh.write(f"2026-12-01T12:00:00Z INFO service-{n % 17} request {n} took 12 ms\n")
    print(f"input: {args.lines} lines of ~62 bytes; every line to the outbox and each sink")
    base = 0.0
    for label, sinks in RUNS.items():
        conf = config(OUT / label.replace(" ", "_").replace("+", ""), sinks)
        start_up = min(run_once(conf, empty, OUT / "run") for _ in range(args.repeat))
        took = min(run_once(conf, inbox, OUT / "run") for _ in range(args.repeat)) - start_up
        base = base or took
        print(f"{label:>15}: {took:.2f} s, {args.lines / took:,.0f} lines/s "
              f"({took / base:.2f}x the outbox-only time)")  # fmt: skip
    shutil.rmtree(OUT, ignore_errors=True)


if __name__ == "__main__":
    main()
