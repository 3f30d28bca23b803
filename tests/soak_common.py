"""Shared parts of the soak runs: a writer thread that records every line it appends,
the exact multiset comparison, and waits that report instead of failing.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon_fixtures import Daemon, outbox_counter, write_config

# A writer waits this long for a file another program is about to create.
REOPEN_WAIT_S = 0.001


@dataclass
class Tally:
    """What the outbox holds against what was written, as multisets."""

    written: int
    lost: int
    doubled: int
    garbage: int
    lost_examples: list[str] = field(default_factory=list)
    garbage_examples: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.doubled == 0 and self.garbage == 0


def tally(written: Counter[str], got: Counter[str]) -> Tally:
    """Lost: written but not in the outbox; doubled: extra copies of written lines;
    garbage: outbox lines that were never written."""
    missing = written - got
    extra = got - written
    garbage = {k: n for k, n in extra.items() if k not in written}
    doubled = sum(n for k, n in extra.items() if k in written)
    return Tally(
        sum(written.values()), sum(missing.values()), doubled, sum(garbage.values()),
        list(missing)[:3], [repr(k[:80]) for k in list(garbage)[:3]],
    )  # fmt: skip


def settle(condition: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    """Poll `condition` until it holds or `timeout` runs out; the last answer, no failure
    (a soak run reports what it found rather than stopping at the first miss)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(interval)
    return True


def caught_up(d: Daemon, want: Counter[str]) -> Callable[[], bool]:
    """A condition: every line of `want` is in the outbox at least once."""

    def check() -> bool:
        got = outbox_counter(d.outbox)
        return all(got[k] >= 1 for k in want)

    return check


@contextmanager
def cpu_burners(count: int) -> Iterator[None]:
    """`count` processes spinning in a busy loop for as long as the block runs: a busy
    machine, where the daemon's steps and logrotate's interleave at their worst."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def passthrough_daemon(root: Path, **daemon: Any) -> Daemon:
    """A Daemon rooted in `root` with a passthrough pipeline (inbox line -> outbox line)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "inbox").mkdir(exist_ok=True)
    return Daemon(root, config=write_config(root / "conf", **daemon))


class LineWriter(threading.Thread):
    """Appends numbered lines (one write each, O_APPEND) to inbox files, `rate` lines a
    second in all, recording every line it wrote.

    `reopen` opens the file for every line and, if it is missing, waits for someone else
    to create it (an application that reopens its log after logrotate's `create`);
    otherwise each file stays open, as under `copytruncate`.
    """

    def __init__(self, inbox: Path, names: list[str], *, rate: float, reopen: bool) -> None:
        super().__init__(name="soak-writer", daemon=True)
        self.paths = [inbox / n for n in names]
        self.rate = rate
        self.reopen = reopen
        self.seq = 0
        self.lines: list[str] = []
        self.error: BaseException | None = None
        self._stop_event = threading.Event()
        self._fds: dict[Path, int] = {}
        for p in self.paths:
            p.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))

    def run(self) -> None:
        started = time.monotonic()
        try:
            while not self._stop_event.is_set():
                path = self.paths[self.seq % len(self.paths)]
                line = f"{path.name} {self.seq:09d} {'x' * (self.seq % 29)}"
                self._append(path, (line + "\n").encode())
                self.lines.append(line)
                self.seq += 1
                ahead = self.seq / self.rate - (time.monotonic() - started)
                if ahead > 0.002:
                    self._stop_event.wait(ahead)
        except BaseException as exc:  # reported by stop()
            self.error = exc
        finally:
            for fd in self._fds.values():
                os.close(fd)

    def _append(self, path: Path, data: bytes) -> None:
        if not self.reopen:
            fd = self._fds.get(path)
            if fd is None:
                fd = self._fds[path] = os.open(path, os.O_WRONLY | os.O_APPEND)
            os.write(fd, data)
            return
        while True:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            except FileNotFoundError:
                if self._stop_event.wait(REOPEN_WAIT_S):
                    raise
                continue
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            return

    def stop(self) -> Counter[str]:
        """Stop, and every line written, as a multiset."""
        self._stop_event.set()
        self.join(10)
        if self.error is not None and not (
            isinstance(self.error, OSError) and self.error.errno == errno.ENOENT
        ):
            raise RuntimeError(f"writer failed: {self.error!r}") from self.error
        return Counter(self.lines)
