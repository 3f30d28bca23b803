"""Faults of the world, sorted by what they may stop.

- A fault of one file (permission denied, a folder where a file was, a name too long,
  too many open files, an outbox path that cannot be made) is that file's state: the
  `FaultBook` keeps its reason and when to try again (back-off, or at once on any change).
- A fault of a shared resource (a full disk, a read-only file system, a database locked
  by another program) is a `SharedFault`: the engine pauses, says why on /health, and
  tries again every few seconds.

`probe_outbox` is how the engine finds out, before reading, whether the outbox's disk
takes writes again.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from store.checkpoints import TrackedFile
from store.db import is_shared_fault as is_shared_db_fault
from store.errors import SharedFault, reason_of
from store.paths import shown
from store.records import FileStatus, describe

log = logging.getLogger("inboxd.watcher")

# Errors of the file system as a whole, not of one file.
SHARED_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
FIRST_RETRY_S = 1.0
MAX_RETRY_S = 60.0
PROBE_NAME = ".inboxd-probe"
PROBE_BYTES = 64 * 1024


def is_shared_os_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in SHARED_ERRNOS


def as_shared(exc: BaseException, what: str) -> SharedFault | None:
    """The SharedFault an error of the outbox (`disk`) or the database means, if any."""
    if isinstance(exc, sqlite3.Error):
        if is_shared_db_fault(exc):
            return SharedFault("database", f"{what}: {describe(exc)}")
        return None
    if isinstance(exc, OSError):
        return SharedFault("disk", reason_of(exc, what))
    return None


@dataclass(slots=True)
class FileFault:
    """Why a file cannot be read now, and when to try again."""

    rel: str
    outbox: str
    reason: str
    retry_at: float
    delay: float
    since: float


class FaultBook:
    """Files in error, keyed like tracked files by (dev, ino); processing thread only."""

    def __init__(self) -> None:
        self.faults: dict[tuple[int, int], FileFault] = {}

    def note(
        self, key: tuple[int, int], rel: str, outbox: str, reason: str, now: float, wall: float
    ) -> bool:
        """Record a fault; True when its reason is new (to be reported once)."""
        old = self.faults.get(key)
        delay = FIRST_RETRY_S if old is None else min(old.delay * 2, MAX_RETRY_S)
        since = wall if old is None else old.since
        self.faults[key] = FileFault(rel, outbox, reason, now + delay, delay, since)
        return old is None or old.reason != reason

    def clear(self, key: tuple[int, int]) -> FileFault | None:
        return self.faults.pop(key, None)

    def due(self, now: float) -> list[tuple[tuple[int, int], FileFault]]:
        return [(k, f) for k, f in self.faults.items() if f.retry_at <= now]

    def next_due(self) -> float:
        return min((f.retry_at for f in self.faults.values()), default=float("inf"))


def file_statuses(
    files: dict[tuple[int, int], TrackedFile], faults: dict[tuple[int, int], FileFault]
) -> list[FileStatus]:
    """Every tracked file, and every file in error, as /files shows them."""
    out = []
    for key, f in files.items():
        fault = faults.get(key)
        state, reason = (f.state, None) if fault is None else ("error", fault.reason)
        out.append(FileStatus(shown(f.path), f.size, f.offset, state, shown(f.outbox),
                              f.lines, f.updated, reason))  # fmt: skip
    for key, fault in faults.items():
        if key not in files:
            out.append(FileStatus(shown(fault.rel), 0, 0, "error", shown(fault.outbox), 0,
                                  fault.since, fault.reason))  # fmt: skip
    return out


__all__ = [
    "FIRST_RETRY_S",
    "MAX_RETRY_S",
    "SHARED_ERRNOS",
    "FaultBook",
    "FileFault",
    "SharedFault",
    "as_shared",
    "file_statuses",
    "is_shared_os_error",
    "reason_of",
]


def probe_outbox(outbox: Path) -> None:
    """Write and sync a small file in the outbox; SharedFault while its disk is full or
    read-only."""
    path = os.path.join(outbox, PROBE_NAME)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, b"\0" * PROBE_BYTES)
            os.fdatasync(fd)
        finally:
            os.close(fd)
            os.unlink(path)
    except OSError as exc:
        raise SharedFault("disk", reason_of(exc, "outbox")) from exc
