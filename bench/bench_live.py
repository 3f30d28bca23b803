"""The live daemon: throughput, end-to-end latency, API latency under load, a file storm.

Usage: python bench/bench_live.py [--lines N] [--rate R] [--seconds S] [--files F]
                                  [--only a,b,c,d]
  a  throughput: one N-line file renamed into the inbox, live daemon vs `daemon.py --once`
  b  latency: lines appended at R lines/s for S s, outbox arrival minus send time
  c  GET /stats and GET /metrics latency while an N-line file is ingested
  d  F files of 10 lines renamed into the inbox at once: time to drain, peak RSS
Each part runs its own daemon on a fresh folder under bench/out/live. Figures, not
assertions.
"""

from __future__ import annotations

import random
import threading
import time
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
    log_line,
    output_of,
    parse_bench_args,
    parse_parts,
    prepare,
    report_problems,
    run_once,
    source_log,
)
from report import ms, percentile, rate, row

DRAIN_TIMEOUT_S = 150.0
LINES_PER_SMALL_FILE = 10
LATENCY_TICK_S = 0.01
READER_POLL_S = 0.001
SENT_MARK = " @"


class Bench:
    """One big input file generated once, shared by the parts through hard links."""

    def __init__(self, work: Path, config: Path, lines: int) -> None:
        self.work = work
        self.lines = lines
        self.config = config
        self.big, self.big_out, took = source_log(work, lines)
        if lines:
            print(f"{input_size(self.big, lines)}  (generated in {took:.1f} s)")

    def staged(self, name: str) -> Path:
        """A fresh name for the big file in the staging folder, ready to be renamed."""
        return link_copy(self.big, self.work / "staging" / name)

    def ingest(self, daemon: Daemon, name: str) -> float:
        """Rename the big file into the daemon's inbox; seconds until all of it is out."""
        return daemon.drain(self.staged(name), self.lines, self.big_out, DRAIN_TIMEOUT_S)


def part_throughput(bench: Bench) -> None:
    print("\n[a] throughput: one file renamed into the inbox")
    once_dir = bench.work / "once"
    fresh_dir(once_dir / "inbox")
    link_copy(bench.big, once_dir / "inbox" / "app.log")
    once = run_once(once_dir, bench.config)
    fresh_dir(once_dir / "inbox")
    empty = run_once(once_dir, bench.config)
    with Daemon(bench.work / "a", bench.config) as daemon:
        live = bench.ingest(daemon, "app.log")
        report_problems(daemon)
    n = bench.lines
    row("live daemon", rate(n, live))
    row("daemon.py --once (wall)", rate(n, once))
    row("daemon.py --once minus start-up", rate(n, once - empty) + f"  start-up {empty:.2f} s")
    row("live / --once minus start-up", f"{(once - empty) / live:.2f}x")


class LatencyWriter(threading.Thread):
    """Appends lines at a steady rate, in small flushed batches, each stamped with time()."""

    def __init__(self, path: Path, rate_per_s: int, seconds: float) -> None:
        super().__init__(name="latency-writer", daemon=True)
        self.path = path
        self.rate_per_s = rate_per_s
        self.seconds = seconds
        self.sent = 0
        self.lag_max_s = 0.0
        self.stop_event = threading.Event()

    def run(self) -> None:
        rnd = random.Random(7)
        with self.path.open("a") as fh:
            t0 = time.monotonic()
            tick = 0
            while not self.stop_event.is_set():
                now = time.monotonic()
                elapsed = now - t0
                due = min(int(elapsed * self.rate_per_s), int(self.seconds * self.rate_per_s))
                block = []
                for i in range(self.sent, due):
                    stamp = f"{SENT_MARK}{time.time():.6f}"
                    block.append(log_line(i, rnd)[:-1] + stamp + "\n")
                if block:
                    fh.write("".join(block))
                    fh.flush()
                    self.sent = due
                if elapsed >= self.seconds:
                    return
                tick += 1
                wake = t0 + tick * LATENCY_TICK_S
                self.lag_max_s = max(self.lag_max_s, time.monotonic() - wake)
                self.stop_event.wait(max(0.0, wake - time.monotonic()))


class LatencyReader(threading.Thread):
    """Tails one outbox file and records arrival time minus send time per line."""

    def __init__(self, path: Path, deadline: float) -> None:
        super().__init__(name="latency-reader", daemon=True)
        self.path = path
        self.deadline = deadline
        self.latencies: list[float] = []
        self.expected: int | None = None
        self.stop_event = threading.Event()

    def run(self) -> None:
        pending = b""
        fh = None
        try:
            while not self.stop_event.is_set() and time.monotonic() < self.deadline:
                if self.expected is not None and len(self.latencies) >= self.expected:
                    return
                if fh is None:
                    try:
                        fh = self.path.open("rb")
                    except FileNotFoundError:
                        self.stop_event.wait(READER_POLL_S)
                        continue
                data = fh.read()
                if not data:
                    self.stop_event.wait(READER_POLL_S)
                    continue
                now = time.time()
                lines = (pending + data).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    mark = line.rfind(SENT_MARK.encode())
                    if mark >= 0:
                        self.latencies.append(now - float(line[mark + len(SENT_MARK) :]))
        finally:
            if fh is not None:
                fh.close()


def part_latency(bench: Bench, rate_per_s: int, seconds: float) -> None:
    print(f"\n[b] latency: {rate_per_s:,} lines/s appended for {seconds:g} s")
    with Daemon(bench.work / "b", bench.config) as daemon:
        writer = LatencyWriter(daemon.inbox / "live.log", rate_per_s, seconds)
        reader = LatencyReader(daemon.outbox / "live.log", time.monotonic() + seconds + 30)
        reader.start()
        writer.start()
        try:
            while writer.is_alive():
                daemon.check_alive()
                writer.join(0.5)
            reader.expected = writer.sent
            reader.join(seconds + 30)
        finally:
            writer.stop_event.set()
            reader.stop_event.set()
            writer.join(5)
            reader.join(5)
        report_problems(daemon)
    got = reader.latencies
    row("lines sent / received", f"{writer.sent:,} / {len(got):,}")
    row("writer late (max)", ms(writer.lag_max_s))
    for label, q in (("p50", 50.0), ("p95", 95.0), ("p99", 99.0), ("max", 100.0)):
        row(f"latency {label}", ms(percentile(got, q)) + ("  (target < 50 ms)" if q == 99 else ""))


def hammer(daemon: Daemon, bench: Bench, path: str, name: str) -> tuple[list[float], float]:
    """GET `path` back to back while the big file is ingested; (latencies, ingest seconds)."""
    src = bench.staged(name)
    latencies: list[float] = []
    done = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with httpx.Client(base_url=daemon.base, timeout=10.0) as client:
                while not done.is_set():
                    t0 = time.perf_counter()
                    client.get(path).raise_for_status()
                    latencies.append(time.perf_counter() - t0)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, name="hammer", daemon=True)
    t0 = daemon.drop(src)
    thread.start()
    try:
        took = daemon.wait_done(bench.lines, bench.big_out, DRAIN_TIMEOUT_S) - t0
    finally:
        done.set()
        thread.join(15)
    if failures:
        raise BenchError(f"GET {path} failed: {failures[0]!r}")
    return latencies, took


def part_api_latency(bench: Bench) -> None:
    print("\n[c] API latency while the engine runs flat out")
    for path in ("/stats", "/metrics"):
        with Daemon(bench.work / "c", bench.config) as daemon:
            latencies, took = hammer(daemon, bench, path, "app.log")
            report_problems(daemon)
        target = "  (target < 25 ms)" if path == "/stats" else ""
        row(f"GET {path} requests", f"{len(latencies):,} in {took:.2f} s")
        row(f"GET {path} p50", ms(percentile(latencies, 50)))
        row(f"GET {path} p99", ms(percentile(latencies, 99)) + target)
        row(f"GET {path} max", ms(percentile(latencies, 100)))
        row(f"ingest while hammering {path}", rate(bench.lines, took))


def part_many_files(bench: Bench, files: int) -> None:
    print(f"\n[d] {files:,} files of {LINES_PER_SMALL_FILE} lines renamed into the inbox")
    staging = fresh_dir(bench.work / "small")
    rnd = random.Random(3)
    expected: dict[str, int] = {}
    for f in range(files):
        lines = [log_line(i, rnd, f"f{f} ") for i in range(LINES_PER_SMALL_FILE)]
        name = f"small-{f:06d}.log"
        expected[name] = sum(len(o) + 1 for line in lines for o in output_of(line[:-1]))
        (staging / name).write_text("".join(lines))
    with Daemon(bench.work / "d", bench.config) as daemon:
        t0 = time.perf_counter()
        for name in expected:
            daemon.drop(staging / name)
        renamed = time.perf_counter() - t0
        took = daemon.wait_files(expected, files * LINES_PER_SMALL_FILE, DRAIN_TIMEOUT_S) - t0
        rss = daemon.peak_rss_kib()
        report_problems(daemon)
    row("renames took", f"{renamed:.2f} s")
    row("all lines in the outbox after", f"{took:.2f} s  (target < 10 s)")
    row("throughput", rate(files * LINES_PER_SMALL_FILE, took))
    row("daemon peak RSS (VmHWM)", f"{rss / 1024:.1f} MiB")


def main() -> None:
    ap = bench_parser(__doc__, "lines of the big file (a, c)")
    ap.add_argument("--rate", type=int, default=1000, help="lines/s appended (b)")
    ap.add_argument("--seconds", type=float, default=20.0, help="duration of b")
    ap.add_argument("--files", type=int, default=10_000, help="small files dropped (d)")
    ap.add_argument("--only", default="a,b,c,d", help="comma-separated parts to run")
    args = parse_bench_args(ap, "live")
    parts = parse_parts(ap, args.only, "abcd")
    work, config = prepare(args.work)
    with exit_on_failure("bench_live"):
        bench = Bench(work, config, args.lines if parts & {"a", "c"} else 0)
        if "a" in parts:
            part_throughput(bench)
        if "b" in parts:
            part_latency(bench, args.rate, args.seconds)
        if "c" in parts:
            part_api_latency(bench)
        if "d" in parts:
            part_many_files(bench, args.files)


if __name__ == "__main__":
    main()
