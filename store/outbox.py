"""The outbox sink: lines tagged `end` appended to `<outbox>/<relative path>`.

Exactly-once rests on two rules kept here and in the checkpoint commit: the outbox is
fsynced before the checkpoint that covers it commits, and at start-up every outbox file
is cut back to the size recorded with its last checkpoint.
"""

from __future__ import annotations

import ctypes
import os
from collections import OrderedDict
from pathlib import Path

# Open outbox descriptors are cached; a daemon fed thousands of files keeps at most this
# many open.
MAX_OPEN_FILES = 256
# Up to this many files written since the last commit are fdatasync'ed one by one; past
# it one syncfs() of the outbox's file system is far cheaper (measured: ten thousand
# small files took over 20 s of fdatasync alone).
FDATASYNC_MAX = 16

_syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)


def sync_filesystem(path: Path) -> None:
    """Flush every file of the file system holding `path` (os.sync where syncfs lacks)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _syncfs is None or _syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


class Outbox:
    """Appends to outbox files; used by the processing thread only."""

    def __init__(self, root: Path, sizes: dict[str, int] | None = None) -> None:
        self.root = root
        self._prefix = str(root).rstrip("/") + "/"
        self.sizes: dict[str, int] = dict(sizes or {})
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._ids: dict[str, tuple[int, int]] = {}
        self._dirty: set[str] = set()
        self._folders: set[str] = set()

    def target(self, rel: str) -> str:
        return self._prefix + rel

    def is_known(self, rel: str) -> bool:
        return rel in self.sizes

    def adopt(self, rel: str) -> int:
        """Record the size a file has before inboxd first writes to it (usually 0)."""
        try:
            size = os.stat(self.target(rel)).st_size
        except FileNotFoundError:
            size = 0
        self.sizes[rel] = size
        return size

    def append(self, rel: str, data: bytes) -> int:
        """Append `data`; returns the new size. Raises OSError (disk full...) to the caller."""
        fd = self._fd(rel)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        # The file's own size, not a running sum: a consumer may have cut or replaced it.
        self.sizes[rel] = os.fstat(fd).st_size
        self._dirty.add(rel)
        return self.sizes[rel]

    def sync(self) -> list[str]:
        """Make every file written since the last sync durable; returns their names."""
        synced = sorted(self._dirty)
        if len(synced) > FDATASYNC_MAX or any(rel not in self._fds for rel in synced):
            sync_filesystem(self.root)
        else:
            for rel in synced:
                os.fdatasync(self._fds[rel])
        self._dirty.clear()
        return synced

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._ids.clear()

    def _fd(self, rel: str) -> int:
        fd = self._fds.get(rel)
        if fd is not None:
            if self._is_current(rel):
                self._fds.move_to_end(rel)
                return fd
            # A consumer moved or deleted the file: what was written is with it; start
            # a new file under the name.
            del self._fds[rel]
            os.fdatasync(fd)
            os.close(fd)
        path = self.target(rel)
        folder = os.path.dirname(path)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o644)
        except FileNotFoundError:  # a consumer removed the folder since
            os.makedirs(folder, exist_ok=True)
            fd = os.open(path, flags, 0o644)
        st = os.fstat(fd)
        self._fds[rel] = fd
        self._ids[rel] = (st.st_dev, st.st_ino)
        while len(self._fds) > MAX_OPEN_FILES:
            old_rel, old_fd = self._fds.popitem(last=False)
            self._ids.pop(old_rel, None)
            # Still in _dirty: the next sync() covers it with syncfs.
            os.close(old_fd)
        return fd

    def _is_current(self, rel: str) -> bool:
        """Whether the cached descriptor is still the file at the outbox path."""
        try:
            st = os.stat(self.target(rel))
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._ids.get(rel)


def recover(root: Path, sizes: dict[str, int]) -> list[tuple[str, int, int]]:
    """Cut every outbox file back to its committed size; returns (path, was, now) cuts.

    A crash between an outbox write and its checkpoint commit leaves bytes whose lines
    will be produced again from the checkpoint; cutting them is what makes delivery
    exactly-once.
    """
    cuts: list[tuple[str, int, int]] = []
    for rel, size in sizes.items():
        path = root / rel
        try:
            actual = os.stat(path).st_size
        except FileNotFoundError:
            continue
        if actual > size:
            os.truncate(path, size)
            cuts.append((rel, actual, size))
    return cuts
