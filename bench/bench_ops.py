"""Operating costs: metric flushes and /metrics scrapes on throughput; database size.

Usage: python bench/bench_ops.py [--lines N] [--repeat R] [--only a,b]
  a  live daemon on an N-line file: --flush-interval 3600 and no scrapes, against
     --flush-interval 1 with GET /metrics every second; best of R runs each
  b  `daemon.py --once --trace` on an N-line file: inboxd.db size and rows per table
Figures, not assertions.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import httpx
from harness import (
    BenchError,
    Daemon,
    bench_parser,
    exit_on_failure,
    fresh_dir,
    input_size,
    link_copy,
    parse_bench_args,
    parse_parts,
    prepare,
    report_problems,
    run_once,
    source_log,
)
from report import best_row, cpu_row, rate, row, runs_row

DRAIN_TIMEOUT_S = 150.0
SCRAPE_EVERY_S = 1.0
TABLES = ("metrics", "traces", "errors", "deadletter", "checkpoints", "outbox")


class Scraper(threading.Thread):
    """GET /metrics once a second, as a Prometheus server would."""

    def __init__(self, base: str) -> None:
        super().__init__(name="scraper", daemon=True)
        self.base = base
        self.stop_event = threading.Event()
        self.scrapes = 0
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.base, timeout=10.0) as client:
                while not self.stop_event.is_set():
                    client.get("/metrics").raise_for_status()
                    self.scrapes += 1
                    self.stop_event.wait(SCRAPE_EVERY_S)
        except BaseException as exc:
            self.failure = exc


def ingest(
    work: Path, config: Path, src: Path, expected: tuple[int, int], busy: bool
) -> tuple[float, float]:
    """Wall and daemon CPU seconds to ingest `src` in a fresh daemon; `busy` flushes, scrapes."""
    flush = "1" if busy else "3600"
    lines, out_bytes = expected
    with Daemon(work, config, ["--flush-interval", flush]) as daemon:
        staged = link_copy(src, work.parent / "staging" / src.name)
        scraper = Scraper(daemon.base)
        if busy:
            scraper.start()
        cpu0 = daemon.cpu_seconds()
        try:
            took = daemon.drain(staged, lines, out_bytes, DRAIN_TIMEOUT_S)
            cpu = daemon.cpu_seconds() - cpu0
        finally:
            scraper.stop_event.set()
            if busy:
                scraper.join(15)
        if scraper.failure is not None:
            raise BenchError(f"GET /metrics failed: {scraper.failure!r}")
        report_problems(daemon)
    return took, cpu


def part_flush_cost(work: Path, config: Path, src: Path, expected: tuple[int, int],
                    repeat: int) -> None:  # fmt: skip
    print("\n[a] flushing every second and scraping /metrics every second")
    quiet: list[float] = []
    busy: list[float] = []
    quiet_cpu: list[float] = []
    busy_cpu: list[float] = []
    for _ in range(repeat):
        took, cpu = ingest(work / "run", config, src, expected, busy=False)
        quiet.append(took)
        quiet_cpu.append(cpu)
        took, cpu = ingest(work / "run", config, src, expected, busy=True)
        busy.append(took)
        busy_cpu.append(cpu)
    q, b = min(quiet), min(busy)
    best_row("flush 3600 s, no scrapes", expected[0], quiet)
    best_row("flush 1 s, /metrics every 1 s", expected[0], busy)
    row("difference", f"{(b - q) / q * 100:+.1f} % time  (target < 3 %)")
    cpu_row("daemon CPU, quiet vs busy", quiet_cpu, busy_cpu)
    runs_row("all runs (s), quiet", quiet)
    runs_row("all runs (s), busy", busy)


def part_db_size(work: Path, config: Path, src: Path, lines: int) -> None:
    print("\n[b] database after `daemon.py --once --trace`")
    once = work / "once"
    fresh_dir(once / "inbox")
    link_copy(src, once / "inbox" / src.name)
    took = run_once(once, config, ["--trace"])
    db = once / "var" / "inboxd.db"
    wal = db.with_name(db.name + "-wal")
    row("--once --trace", rate(lines, took))
    row("inboxd.db", f"{db.stat().st_size / 1e6:.2f} MB")
    row("inboxd.db-wal", f"{wal.stat().st_size / 1e6:.2f} MB" if wal.exists() else "absent")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table in TABLES:
            if table in present:
                (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                row(f"rows in {table}", f"{count:,}")
            else:
                row(f"rows in {table}", "no such table")
    conn.close()


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each configuration (a)")
    ap.add_argument("--only", default="a,b", help="comma-separated parts to run")
    args = parse_bench_args(ap, "ops")
    parts = parse_parts(ap, args.only, "ab")
    work, config = prepare(args.work)
    src, out_bytes, took = source_log(work, args.lines)
    print(f"{input_size(src, args.lines)}  (generated in {took:.1f} s)")
    with exit_on_failure("bench_ops"):
        if "a" in parts:
            part_flush_cost(work, config, src, (args.lines, out_bytes), args.repeat)
        if "b" in parts:
            part_db_size(work, config, src, args.lines)


if __name__ == "__main__":
    main()
