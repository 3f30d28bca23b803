"""Shared pieces of the live benchmarks: input files, a daemon subprocess, waits, figures.

Everything talks to 127.0.0.1 only and every wait has a deadline. `Daemon` is a context
manager that always terminates the process it started, on errors and Ctrl-C too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType, TracebackType

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from procs import CONFIG, PIPELINE  # noqa: E402
from report import row  # noqa: E402

LEVELS = ("INFO",) * 7 + ("WARN",) * 2 + ("ERROR",)
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.02
FILES_POLL_S = 0.05


class BenchError(Exception):
    """The benchmark cannot go on (the daemon died, a deadline passed)."""


def install_sigterm() -> None:
    """Turn SIGTERM into SystemExit so that `finally` blocks stop the daemon."""

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)


@contextlib.contextmanager
def exit_on_failure(name: str) -> Iterator[None]:
    """End the run with a one-line message naming `name` on BenchError or Ctrl-C."""
    try:
        yield
    except BenchError as exc:
        raise SystemExit(f"{name}: {exc}") from None
    except KeyboardInterrupt:
        raise SystemExit(f"{name}: interrupted") from None


def bench_parser(doc: str, lines_help: str | None = None) -> argparse.ArgumentParser:
    """A command line described by the first line of `doc`, starting with --lines."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help=lines_help)
    return ap


def parse_bench_args(ap: argparse.ArgumentParser, name: str) -> argparse.Namespace:
    """Add --work (default bench/out/`name`) last and parse the command line."""
    ap.add_argument("--work", type=Path, default=HERE / "out" / name)
    return ap.parse_args()


def parse_parts(ap: argparse.ArgumentParser, only: str, known: str) -> set[str]:
    """The parts named in a comma-separated --only; unknown ones are a usage error."""
    parts = {p.strip() for p in only.split(",") if p.strip()}
    unknown = parts - set(known)
    if unknown:
        ap.error(f"--only: unknown parts {', '.join(sorted(unknown))}")
    return parts


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def output_of(line: str) -> list[str]:
    """The outbox lines the bench pipeline makes of one input line."""
    out: list[str] = []
    todo = [("start", line)]
    while todo:
        tag, text = todo.pop()
        for t, o in PIPELINE[tag](text):
            if t == "end":
                out.append(o)
            else:
                todo.append((t, o))
    return out


def log_line(i: int, rnd: random.Random, prefix: str = "") -> str:
    level = rnd.choice(LEVELS)
    took = rnd.randint(1, 999)
    return f"2026-11-27T12:00:00Z {level} service-{i % 17} {prefix}request {i} took {took} ms\n"


def generate(path: Path, n: int, *, seed: int = 42, prefix: str = "") -> int:
    """Write `n` log lines to `path`; returns the bytes the pipeline will put in the outbox."""
    rnd = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    expected = 0
    block: list[str] = []
    with path.open("w") as fh:
        for i in range(n):
            line = log_line(i, rnd, prefix)
            block.append(line)
            expected += sum(len(o.encode()) + 1 for o in output_of(line[:-1]))
            if len(block) >= 10_000:
                fh.write("".join(block))
                block.clear()
        fh.write("".join(block))
    return expected


def source_log(work: Path, lines: int) -> tuple[Path, int, float]:
    """Generate `work`/source/app.log: (its path, outbox bytes it makes, seconds taken)."""
    src = work / "source" / "app.log"
    t0 = time.perf_counter()
    out_bytes = generate(src, lines)
    return src, out_bytes, time.perf_counter() - t0


def input_size(src: Path, lines: int) -> str:
    return f"input: {lines:,} lines, {src.stat().st_size / 1e6:.1f} MB"


def outbox_bytes(outbox: Path) -> int:
    """Total size of the regular files under `outbox`."""
    total = 0
    stack = [outbox]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
    return total


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def write_config(work: Path) -> Path:
    config = work / "bench.toml"
    config.write_text(CONFIG)
    return config


def prepare(work: Path) -> tuple[Path, Path]:
    """SIGTERM turned into SystemExit, `work` emptied, the bench config in it: (work, config)."""
    install_sigterm()
    work = fresh_dir(work)
    return work, write_config(work)


def bench_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(HERE))


def daemon_cmd(work: Path, config: Path, extra: Iterable[str] = ()) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "daemon.py"),
        "--inbox",
        str(work / "inbox"),
        "--outbox",
        str(work / "outbox"),
        "--state-dir",
        str(work / "var"),
        "--config",
        str(config),
        *extra,
    ]


def run_once(work: Path, config: Path, extra: Iterable[str] = ()) -> float:
    """Wall time of `daemon.py --once` on `work/inbox` (state and outbox start empty)."""
    for d in ("outbox", "var"):
        shutil.rmtree(work / d, ignore_errors=True)
    (work / "inbox").mkdir(parents=True, exist_ok=True)
    cmd = daemon_cmd(work, config, ["--once", *extra])
    t0 = time.perf_counter()
    done = subprocess.run(
        cmd, env=bench_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise BenchError(f"daemon --once exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return took


class Daemon:
    """`daemon.py` on a fresh work folder, as a subprocess on a free port."""

    def __init__(self, work: Path, config: Path, extra: Iterable[str] = ()) -> None:
        self.work = work
        self.inbox = work / "inbox"
        self.outbox = work / "outbox"
        self.state = work / "var"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.cmd = daemon_cmd(work, config, ["--port", str(self.port), *extra])
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.base, timeout=10.0)

    def __enter__(self) -> Daemon:
        for d in (self.inbox, self.outbox, self.state):
            fresh_dir(d)
        with (self.work / "daemon.stderr").open("wb") as err:
            self.proc = subprocess.Popen(
                self.cmd,
                env=bench_env(),
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError("daemon not started")
        return self.proc.pid

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if self.client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise BenchError(f"daemon not answering /health after {START_TIMEOUT_S:.0f} s")

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            err = (self.work / "daemon.stderr").read_text(errors="replace")[-1000:]
            raise BenchError(f"daemon exited with {self.proc.returncode}: {err}")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a grace period; returns the exit code."""
        self.client.close()
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                print(f"  daemon did not stop within {STOP_TIMEOUT_S:.0f} s; killing it")
                proc.kill()
                proc.wait()
        return proc.returncode

    def stats(self) -> dict[str, dict[str, float]]:
        doc: dict[str, dict[str, float]] = self.client.get("/stats").raise_for_status().json()
        return doc

    def start_count(self) -> int:
        """Lines counted by the start processor."""
        return int(self.stats()["level_router"]["count"])

    def drop(self, src: Path, name: str | None = None) -> float:
        """Rename `src` into the inbox; returns the perf_counter time of the rename."""
        target = self.inbox / (name or src.name)
        t0 = time.perf_counter()
        os.rename(src, target)
        return t0

    def drain(self, src: Path, lines: int, out_bytes: int, timeout_s: float) -> float:
        """Rename `src` into the inbox; seconds until all of it is out (see wait_done)."""
        t0 = self.drop(src)
        return self.wait_done(lines, out_bytes, timeout_s) - t0

    def wait_done(self, lines: int, out_bytes: int, timeout_s: float) -> float:
        """Wait until the outbox holds `out_bytes` and /stats counts `lines` at the start.

        The outbox is watched first (by file sizes, no HTTP) so that the wait does not
        compete with the engine; returns the perf_counter time when both were seen.
        """
        deadline = time.monotonic() + timeout_s
        while outbox_bytes(self.outbox) < out_bytes:
            if time.monotonic() > deadline:
                got = outbox_bytes(self.outbox)
                raise BenchError(f"outbox holds {got:,} of {out_bytes:,} bytes after {timeout_s} s")
            self.check_alive()
            time.sleep(POLL_S)
        while self.start_count() < lines:
            if time.monotonic() > deadline:
                raise BenchError(f"/stats counts {self.start_count():,} of {lines:,} lines")
            time.sleep(POLL_S)
        return time.perf_counter()

    def wait_files(self, expected: dict[str, int], lines: int, timeout_s: float) -> float:
        """Wait until each outbox file named in `expected` reaches its size, then /stats.

        A file is stat'ed until it is complete, and never after, so that polling
        thousands of files does not compete with the daemon for the CPU.
        """
        deadline = time.monotonic() + timeout_s
        pending = dict(expected)
        while pending:
            if time.monotonic() > deadline:
                raise BenchError(f"{len(pending):,} outbox files incomplete after {timeout_s} s")
            self.check_alive()
            with os.scandir(self.outbox) as entries:
                for entry in entries:
                    want = pending.get(entry.name)
                    if want is not None and entry.stat(follow_symlinks=False).st_size >= want:
                        del pending[entry.name]
            if pending:
                time.sleep(FILES_POLL_S)
        return self.wait_done(lines, 0, max(1.0, deadline - time.monotonic()))

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the daemon so far.

        Unlike wall time it does not count time a busy host gives to others, so it
        compares two configurations more steadily on a shared machine.
        """
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_kib(self) -> int:
        """VmHWM of the daemon process, in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return -1

    def log_problems(self, limit: int = 5) -> list[str]:
        """Warning and error lines of the daemon's own log, and its stderr tail."""
        found: list[str] = []
        log = self.state / "logs" / "inboxd.log"
        if log.exists():
            for text in log.read_text(errors="replace").splitlines():
                try:
                    doc = json.loads(text)
                except ValueError:
                    continue
                if doc.get("level") in ("warning", "error", "critical"):
                    found.append(f"{doc.get('level')}: {doc.get('msg')} {doc.get('event', '')}")
        err = self.work / "daemon.stderr"
        if err.exists():
            for text in err.read_text(errors="replace").splitlines():
                if "Traceback" in text or "Error" in text:
                    found.append(f"stderr: {text[:200]}")
        return found[:limit] + ([f"... {len(found) - limit} more"] if len(found) > limit else [])


def report_problems(daemon: Daemon) -> None:
    for problem in daemon.log_problems():
        row("daemon log", problem)


def link_copy(src: Path, dst: Path) -> Path:
    """A new name for `src` (a hard link, so no copy), to be renamed into an inbox."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    os.link(src, dst)
    return dst
