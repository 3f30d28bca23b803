"""The real `logrotate` rotating inbox/app.log while a writer appends to it and the
daemon reads it, in `create`+`compress`+`delaycompress` mode and in `copytruncate` mode.

logrotate itself may lose lines under `copytruncate` (those written between its copy
and its truncate). Those are told apart honestly: a line lost by logrotate is in no
inbox file (rotations unpacked) and not in the outbox, AND was written while a logrotate
run was under way. Any other missing line is lost by inboxd.
"""

from __future__ import annotations

import gzip
import random
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from daemon_fixtures import Daemon, outbox_counter, pause
from soak_common import LineWriter, caught_up, cpu_burners, passthrough_daemon, settle, tally

from watcher.reading.copies import COPY_WAIT_S

MODES = {
    "create+compress": ["create", "compress", "delaycompress"],
    "copytruncate": ["copytruncate"],
}
LOG_NAME = "app.log"
CATCH_UP_S = 60.0
LOGROTATE_TIMEOUT_S = 30
RACE_INTERVAL_S = 0.5
RACE_RATE = 2000.0


def logrotate_available() -> bool:
    return shutil.which("logrotate") is not None


@dataclass
class RotateResult:
    mode: str
    rotations: int
    written: int
    lost_by_inboxd: int
    doubled: int
    garbage: int
    lost_by_logrotate: int
    alive: bool
    secs: float
    examples: list[str]

    @property
    def ok(self) -> bool:
        return self.lost_by_inboxd == 0 and self.doubled == 0 and self.garbage == 0 and self.alive

    def summary(self) -> str:
        return (
            f"soak logrotate {self.mode}: rotations={self.rotations} written={self.written} "
            f"lost_by_inboxd={self.lost_by_inboxd} doubled={self.doubled} "
            f"garbage={self.garbage} lost_by_logrotate={self.lost_by_logrotate} "
            f"alive={'yes' if self.alive else 'no'} secs={self.secs:.1f}"
        )


@dataclass(frozen=True)
class Policy:
    """How logrotate is told to rotate: `keep` rotations; with `size` (e.g. "1k") it
    rotates when the log is over it (not forced), so copies are renamed along a long
    chain (app.log.1 -> app.log.2 ...) as in production."""

    keep: int = 3
    size: str | None = None


# The copytruncate race as reported: logrotate every RACE_INTERVAL_S with `size 1k` and
# `rotate 1000`, against RACE_RATE lines a second through one O_APPEND descriptor.
RACE_POLICY = Policy(keep=1000, size="1k")


def write_logrotate_config(root: Path, mode: str, policy: Policy = Policy()) -> Path:
    """A logrotate config for inbox/app.log in `mode`, by `policy`."""
    size = [f"size {policy.size}"] if policy.size else []
    directives = [*MODES[mode], *size, f"rotate {policy.keep}", "missingok"]
    body = "\n".join(f"    {d}" for d in directives)
    conf = root / "logrotate.conf"
    conf.write_text(f"{root / 'inbox' / LOG_NAME} {{\n{body}\n}}\n")
    return conf


def rotate(root: Path, conf: Path, *, force: bool = True) -> None:
    """One rotation by the real binary (forced, or as its `size` says), with its own
    state file."""
    done = subprocess.run(
        ["logrotate", *(["-f"] if force else []), "-s", str(root / "logrotate.state"), str(conf)],
        capture_output=True,
        text=True,
        timeout=LOGROTATE_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise RuntimeError(f"logrotate exit {done.returncode}: {done.stderr.strip()}")


def inbox_lines(inbox: Path) -> Counter[str]:
    """Every line in every inbox file, compressed rotations unpacked."""
    found: Counter[str] = Counter()
    for path in inbox.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
            found.update(data.decode("utf-8", "replace").splitlines())
    return found


def seq_of(line: str) -> int:
    return int(line.split()[1])


def rotate_while_writing(
    d: Daemon,
    conf: Path,
    *,
    rotations: int,
    interval: float,
    rate: float,
    reopen: bool,
    kills: random.Random | None = None,
    force: bool = True,
) -> tuple[Counter[str], list[tuple[int, int]]]:
    """Rotate `rotations` times while the writer runs; the lines written, and the
    writer's line numbers during each logrotate run. `reopen`: the writer opens the log
    by name for every line (after `create`), else keeps it open (`copytruncate`).
    With `kills`, the daemon gets `kill -9` at a random moment just after each rotation
    and is started again."""
    writer = LineWriter(d.inbox, [LOG_NAME], rate=rate, reopen=reopen)
    writer.start()
    windows: list[tuple[int, int]] = []
    try:
        for _ in range(rotations):
            pause(interval)
            lo = writer.seq - 1
            rotate(d.root, conf, force=force)
            windows.append((lo, writer.seq + 1))
            if kills is not None:
                pause(kills.uniform(0.0, 0.3))
                d.kill()
                d.start()
        pause(interval)
    finally:
        written = writer.stop()
    return written, windows


def soak_logrotate(
    d: Daemon,
    mode: str,
    *,
    rotations: int,
    interval: float,
    rate: float,
    kills: random.Random | None = None,
    policy: Policy = Policy(),
    label: str = "",
) -> RotateResult:
    """Run `d` (a passthrough pipeline), run logrotate on app.log `rotations` times in
    `mode` by `policy` while writing (with `kills`, kill -9 after each), let the daemon
    catch up, and compare the outbox with what was written."""
    started = time.monotonic()
    d.inbox.mkdir(parents=True, exist_ok=True)
    conf = write_logrotate_config(d.root, mode, policy)
    try:
        d.start()
        written, windows = rotate_while_writing(
            d, conf, rotations=rotations, interval=interval, rate=rate,
            reopen="create" in mode, kills=kills, force=policy.size is None,
        )  # fmt: skip
        present = inbox_lines(d.inbox)
        settle(caught_up(d, present), CATCH_UP_S, 0.5)
        if "copytruncate" in mode:
            # A copy held back as possibly still being written is read once its wait is
            # over: a copy read twice shows only then.
            pause(COPY_WAIT_S + 1.0)
        alive = d.is_running()
        if alive:
            d.stop()
    finally:
        d.kill()
    label = label or (mode if kills is None else f"{mode} with kill -9")
    return judge(label, rotations, written, outbox_counter(d.outbox), present, windows,
                 alive=alive, secs=time.monotonic() - started)  # fmt: skip


def judge(
    mode: str,
    rotations: int,
    written: Counter[str],
    got: Counter[str],
    present: Counter[str],
    windows: list[tuple[int, int]],
    *,
    alive: bool,
    secs: float,
) -> RotateResult:
    """Sort the missing lines: logrotate's when in no file and written during a rotation."""
    t = tally(written, got)
    missing = written - got

    def logrotates(line: str) -> bool:
        s = seq_of(line)
        return line not in present and any(lo <= s <= hi for lo, hi in windows)

    by_logrotate = sum(n for line, n in missing.items() if logrotates(line))
    lost = [line for line in missing if not logrotates(line)]
    return RotateResult(
        mode, rotations, t.written, t.lost - by_logrotate, t.doubled, t.garbage,
        by_logrotate, alive, secs, [*lost[:3], *t.garbage_examples],
    )  # fmt: skip


def copytruncate_race(root: Path, *, secs: float, burn: int, label: str) -> RotateResult:
    """The copytruncate race in `root` for about `secs` seconds of writing, beside
    `burn` busy-loop processes."""
    rotations = max(int(secs / RACE_INTERVAL_S), 1)
    with cpu_burners(burn):
        return soak_logrotate(
            passthrough_daemon(root), "copytruncate", rotations=rotations,
            interval=RACE_INTERVAL_S, rate=RACE_RATE, policy=RACE_POLICY, label=label,
        )  # fmt: skip
