"""Start-up: from exec to the first line in the outbox, to READY=1 and to /health.

Usage: python bench/bench_startup.py [--repeat R] [--lines N]
The daemon runs with the default pipeline on an inbox that already holds a file of N
realistic lines. `--once`: time until the outbox has its first line, and until the
process exits. Live: time until the outbox has its first line, until READY=1 arrives on
a NOTIFY_SOCKET the benchmark listens on, and until `GET /health` answers 200. The
outbox is polled every millisecond, /health every 5 ms. Prints every run, then the
best and the median. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

from harness import (  # noqa: E402
    BenchError,
    bench_env,
    daemon_cmd,
    exit_on_failure,
    free_port,
    install_sigterm,
)
from loglines import write_mix  # noqa: E402
from report import percentile, row  # noqa: E402

DEADLINE_S = 30.0
OUTBOX_POLL_S = 0.001
HEALTH_POLL_S = 0.005


def first_line_out(outbox: Path) -> bool:
    try:
        return (outbox / "app.log").stat().st_size > 0
    except FileNotFoundError:
        return False


def health_ok(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def fresh(work: Path) -> None:
    for d in ("outbox", "var"):
        shutil.rmtree(work / d, ignore_errors=True)


def run_once(work: Path, config: Path) -> dict[str, float]:
    """Seconds from exec to the first outbox line and to exit, for `--once`."""
    fresh(work)
    cmd = daemon_cmd(work, config, ["--once"])
    t0 = time.perf_counter()
    with (work / "daemon.stderr").open("wb") as err:
        proc = subprocess.Popen(cmd, env=bench_env(), stdout=subprocess.DEVNULL, stderr=err)
    seen: dict[str, float] = {}
    try:
        while proc.poll() is None and time.perf_counter() - t0 < DEADLINE_S:
            if "first line" not in seen and first_line_out(work / "outbox"):
                seen["first line"] = time.perf_counter() - t0
            time.sleep(OUTBOX_POLL_S)
        proc.wait(DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    seen["exit"] = time.perf_counter() - t0
    if proc.returncode != 0 or not first_line_out(work / "outbox"):
        tail = (work / "daemon.stderr").read_text(errors="replace")[-500:]
        raise BenchError(f"daemon --once exited {proc.returncode} without output: {tail}")
    seen.setdefault("first line", seen["exit"])
    return seen


def run_live(work: Path, config: Path) -> dict[str, float]:
    """Seconds from exec to the first outbox line, READY=1 and /health, live."""
    fresh(work)
    port = free_port()
    notify_path = work / "notify.sock"
    notify_path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.setblocking(False)
        env = dict(bench_env(), NOTIFY_SOCKET=str(notify_path))
        cmd = daemon_cmd(work, config, ["--port", str(port)])
        t0 = time.perf_counter()
        with (work / "daemon.stderr").open("wb") as err:
            proc = subprocess.Popen(
                cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
            )
        try:
            return watch_start(proc, t0, work / "outbox", notify, port)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def watch_start(
    proc: subprocess.Popen[bytes], t0: float, outbox: Path, notify: socket.socket, port: int
) -> dict[str, float]:
    seen: dict[str, float] = {}
    next_health = t0
    while len(seen) < 3:
        now = time.perf_counter()
        if now - t0 > DEADLINE_S:
            raise BenchError(f"after {DEADLINE_S:.0f} s only {sorted(seen)} were seen")
        if proc.poll() is not None:
            raise BenchError(f"the daemon exited {proc.returncode} while starting")
        if "first line" not in seen and first_line_out(outbox):
            seen["first line"] = time.perf_counter() - t0
        try:
            if b"READY=1" in notify.recv(4096).split(b"\n"):
                seen.setdefault("READY=1", time.perf_counter() - t0)
        except BlockingIOError:
            pass
        if "/health" not in seen and now >= next_health:
            if health_ok(port):
                seen["/health"] = time.perf_counter() - t0
            next_health = now + HEALTH_POLL_S
        time.sleep(OUTBOX_POLL_S)
    return seen


def interpreter_start() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


def show(label: str, runs: list[dict[str, float]], events: list[str]) -> None:
    for event in events:
        values = [r[event] for r in runs]
        row(
            f"{label}: exec -> {event}",
            f"best {min(values) * 1e3:.0f} ms, median {percentile(values, 50) * 1e3:.0f} ms"
            f"  (runs: {' '.join(f'{v * 1e3:.0f}' for v in values)})",
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--lines", type=int, default=100)
    ap.add_argument("--work", type=Path, default=HERE / "out" / "startup")
    args = ap.parse_args()
    install_sigterm()
    work: Path = args.work
    shutil.rmtree(work, ignore_errors=True)
    write_mix(work / "inbox" / "app.log", args.lines)
    config = work / "default.toml"
    config.write_text("")  # no [pipeline]: the embedded default pipeline
    print(f"default pipeline, {args.lines} lines waiting in the inbox, {args.repeat} runs each")
    starts = [interpreter_start() for _ in range(args.repeat)]
    row("python -c pass", f"best {min(starts) * 1e3:.0f} ms")
    once = [run_once(work, config) for _ in range(args.repeat)]
    live = [run_live(work, config) for _ in range(args.repeat)]
    show("--once", once, ["first line", "exit"])
    show("live", live, ["first line", "READY=1", "/health"])


if __name__ == "__main__":
    with exit_on_failure("bench_startup"):
        main()
