"""One daemon per state folder and per outbox: an exclusive lock held for the process's life.

Two daemons on one state folder would each read every file and double every line. Start-up
takes `flock` on a file in the state folder and one in the outbox (two daemons with their
own state folders writing one outbox would double it too); the kernel releases both when
the process ends, `kill -9` included, so a stale lock never blocks a restart. The files hold
the holder's pid, for the one line a second daemon prints before it exits 2.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from store.errors import ConfigError
from store.folders import make_folder

STATE_LOCK = "inboxd.lock"
OUTBOX_LOCK = ".inboxd-lock"


class FolderLock:
    """An exclusive lock on `folder` (through the file `name` in it); release() or the end
    of the process lets it go."""

    def __init__(self, folder: Path, name: str, what: str) -> None:
        self.folder = folder
        self.path = folder / name
        self.what = what
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise ConfigError naming the folder and the holder's pid."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise ConfigError(f"{self.folder}: {self.what} cannot be written: "
                              f"{exc.strerror}") from None  # fmt: skip
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise ConfigError(
                f"{self.folder}: {self.what} is in use by another inboxd (pid {holder}); "
                "stop that one first, or give this one its own folder"
            ) from None
        except OSError as exc:  # a file system without locks: say so rather than go on
            os.close(fd)
            raise ConfigError(f"{self.folder}: {self.what} cannot be locked: "
                              f"{exc.strerror}") from None  # fmt: skip
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


def lock_folders(state_dir: Path, outbox: Path) -> list[FolderLock]:
    """Lock the state folder, then the outbox (both made if missing); ConfigError if one
    is held by another daemon."""
    locks: list[FolderLock] = []
    try:
        for folder, name, what in ((state_dir, STATE_LOCK, "state folder"),
                                   (outbox, OUTBOX_LOCK, "outbox")):  # fmt: skip
            make_folder(folder, what)
            lock = FolderLock(folder, name, what)
            lock.acquire()
            locks.append(lock)
    except ConfigError:
        for lock in locks:
            lock.release()
        raise
    return locks
