"""Workers: a CPU-heavy pipeline with `--workers 1` and `--workers 2`, in the same run.

Usage: python bench/bench_workers.py [--lines N] [--repeat R] [--work DIR]
Each line is parsed as JSON, searched with two regexes, enriched and written as JSON
again (bench/heavy.py). `--once` runs alternate between one and two workers; the outbox
of every run is compared byte for byte with the first. Then a live daemon with two
workers ingests the same file while `/stats` is fetched every 20 ms: its latency is the
API's under that load. Prints every run; figures, not assertions.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from heavy import CONFIG  # noqa: E402

SAMPLE_S = 0.1


def generate(path: Path, n: int) -> None:
    rnd = random.Random(7)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for i in range(n):
            ip = f"{rnd.choice(['10', '192', '172', '8'])}.{rnd.randint(0, 255)}.0.{i % 250}"
            rec = {"ts": 1764245000 + i, "svc": f"svc-{i % 17}", "level": "info",
                   "msg": f"GET /item/{i} from {ip} took {rnd.randint(1, 999)} ms"}  # fmt: skip
            fh.write(json.dumps(rec) + "\n")


def once(
    work: Path, src: Path, workers: int, run: int, *, empty: bool = False
) -> tuple[float, float, Path]:
    """(seconds, CPU seconds of the daemon and its workers, outbox file) of one run;
    `empty`: the same command on an empty inbox (start-up and stop alone)."""
    root = work / f"w{workers}-{run}"
    shutil.rmtree(root, ignore_errors=True)
    (root / "inbox").mkdir(parents=True)
    if not empty:
        os.link(src, root / "inbox" / "app.log")
    cmd = [sys.executable, str(ROOT / "daemon.py"), "--once", "--config", str(work / "c.toml"),
           "--inbox", str(root / "inbox"), "--outbox", str(root / "outbox"),
           "--state-dir", str(root / "var"), "--workers", str(workers)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, cwd=ROOT)
    seen: dict[int, float] = {}
    while True:
        # The workers are children of a fork server, not of the daemon: their CPU time
        # is read from /proc while they run (the last sample misses < SAMPLE_S).
        seen.update(tree_cpu(proc.pid))
        try:
            proc.wait(SAMPLE_S)  # returns as the daemon exits: the time is not rounded
            break
        except subprocess.TimeoutExpired:
            pass
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"daemon exited with {proc.returncode}")
    return took, sum(seen.values()), root / "outbox" / "app.log"


def tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds of `root` and every process below it, by pid.

    Follows /proc/PID/task/TID/children down from `root`, so a sample reads a few small
    files: a scan of all of /proc every 50 ms took a tenth of a core, and with both cores
    busy that came out of the run being measured.
    """
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        proc = Path("/proc") / str(pid)
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            tasks = os.listdir(proc / "task")
            for tid in tasks:
                todo.extend(int(c) for c in (proc / "task" / tid / "children").read_text().split())
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / tick
    return found


BARE_LOOP = """
import sys, time
sys.path.insert(0, sys.argv[1])
from heavy import enrich
lines = open(sys.argv[2]).read().splitlines()
t0 = time.perf_counter()
for line in lines:
    for tag, out in enrich(line):
        pass
print(time.perf_counter() - t0)
"""


def ceiling(work: Path, src: Path, repeat: int) -> float:
    """What the machine gives two busy processes: the bare loop over every line in one
    process, against the same loop in two processes at once, each over every line (as
    long as a run with workers lasts). 2.0 on two free cores; a VM whose vCPUs share a
    physical core, or whose host is busy, gives less (best of `repeat`)."""

    def run(parts: int) -> float:
        procs = [subprocess.Popen([sys.executable, "-c", BARE_LOOP, str(work), str(src)],
                                  stdout=subprocess.PIPE, text=True)
                 for _ in range(parts)]  # fmt: skip
        outs = [p.communicate()[0] for p in procs]
        assert all(p.returncode == 0 for p in procs)
        return max(float(o) for o in outs)

    one = min(run(1) for _ in range(repeat))
    two = min(run(2) for _ in range(repeat))
    return 2 * one / two


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def live_latency(work: Path, src: Path, lines: int) -> tuple[float, float, float]:
    """(lines/s, /stats p50 ms, p99 ms) of a live daemon with two workers."""
    root = work / "live"
    shutil.rmtree(root, ignore_errors=True)
    (root / "inbox").mkdir(parents=True)
    port = free_port()
    cmd = [sys.executable, str(ROOT / "daemon.py"), "--config", str(work / "c.toml"),
           "--inbox", str(root / "inbox"), "--outbox", str(root / "outbox"),
           "--state-dir", str(root / "var"), "--workers", "2", "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(port, "/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("bench_workers: the live daemon did not start")
            time.sleep(0.05)
        time.sleep(1.0)  # the workers are up
        os.link(src, root / "inbox" / "app.log")
        t0 = time.perf_counter()
        samples: list[float] = []
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            while True:
                s0 = time.perf_counter()
                conn.request("GET", "/stats")
                response = conn.getresponse()
                stats = json.loads(response.read())
                samples.append((time.perf_counter() - s0) * 1000)
                if stats.get("enrich", {}).get("count", 0) >= lines:
                    break
                if time.perf_counter() - t0 > 300:
                    raise SystemExit("bench_workers: the live run did not finish")
                time.sleep(0.02)
        finally:
            conn.close()
        rate = lines / (time.perf_counter() - t0)
    finally:
        proc.terminate()
        proc.wait(30)
    q = statistics.quantiles(samples, n=100)
    return rate, statistics.median(samples), q[98]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/inboxd-bench-workers"))
    args = ap.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "heavy.py", work / "heavy.py")
    (work / "c.toml").write_text(CONFIG)
    src = work / "src.log"
    if not src.exists() or sum(1 for _ in src.open()) != args.lines:
        generate(src, args.lines)
    print(f"machine: {os.cpu_count()} cores; lines: {args.lines:,}")
    reference: bytes | None = None
    best = {1: 0.0, 2: 0.0}
    for run in range(args.repeat):
        for workers in (1, 2):
            took, cpu, out = once(work, src, workers, run)
            data = out.read_bytes()
            reference = data if reference is None else reference
            same = "same outbox" if data == reference else "OUTBOX DIFFERS"
            rate = args.lines / took
            best[workers] = max(best[workers], rate)
            print(f"--once --workers {workers}: {rate:>9,.0f} lines/s  ({took:.2f} s, "
                  f"{cpu:.2f} s CPU)  {same}")  # fmt: skip
    speedup = best[2] / best[1]
    print(f"best --workers 2 / --workers 1: {speedup:.2f}x end to end")
    start = {w: min(once(work, src, w, 0, empty=True)[0] for _ in range(args.repeat))
             for w in (1, 2)}  # fmt: skip
    net = {w: args.lines / best[w] - start[w] for w in (1, 2)}
    print(f"start-up (empty inbox): {start[1]:.2f} s with 1 worker, {start[2]:.2f} s with 2; "
          f"without it: {net[1] / net[2]:.2f}x")  # fmt: skip
    limit = ceiling(work, src, args.repeat)
    print(f"machine ceiling (bare loop, 2 processes / 1): {limit:.2f}x; workers reach "
          f"{speedup / limit:.0%} of it")  # fmt: skip
    rate, p50, p99 = live_latency(work, src, args.lines)
    print(f"live --workers 2: {rate:,.0f} lines/s; /stats p50 {p50:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
