"""The outbox sink: lines tagged `end` appended to `<outbox>/<relative path>`.

Exactly-once rests on two rules kept here and in the checkpoint commit: the outbox is
fsynced before the checkpoint that covers it commits, and at start-up every outbox file
is cut back to the size recorded with its last checkpoint.
"""

from __future__ import annotations

import ctypes
import os
from collections import OrderedDict
from collections.abc import Callable
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


ResetFn = Callable[[str, int, int, int], None]


class Outbox:
    """Appends to outbox files; used by the processing thread only.

    Each outbox file is known by its (dev, ino) and committed size. Whenever inboxd
    starts a file afresh (first write, a consumer moved, deleted or truncated it), the
    new identity and base size are handed to `on_reset`, which makes them durable before
    a byte is written: a crash can then never leave lines in a file that start-up would
    not cut back.
    """

    def __init__(
        self,
        root: Path,
        sizes: dict[str, int] | None = None,
        ids: dict[str, tuple[int, int]] | None = None,
        *,
        on_reset: ResetFn | None = None,
    ) -> None:
        self.root = root
        self._prefix = str(root).rstrip("/") + "/"
        self.sizes: dict[str, int] = dict(sizes or {})
        self.ids: dict[str, tuple[int, int]] = dict(ids or {})
        self._on_reset = on_reset
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._dirty: set[str] = set()
        self._folders: set[str] = set()

    def target(self, rel: str) -> str:
        return self._prefix + rel

    def entry(self, rel: str) -> tuple[int, int, int]:
        """(size, dev, ino) as committed with a checkpoint."""
        dev, ino = self.ids.get(rel, (0, 0))
        return self.sizes.get(rel, 0), dev, ino

    def open(self, rel: str) -> None:
        """Make sure `rel` can be written (OSError otherwise: a fault of this file)."""
        fd = self._fds.get(rel)
        if fd is None or not self._is_current(rel, fd):
            self._reopen(rel)

    def append(self, rel: str, data: bytes) -> int:
        """Append `data`; returns the new size. Raises OSError (disk full...) to the caller."""
        fd = self._fds.get(rel)
        if fd is None or not self._is_current(rel, fd):
            fd = self._reopen(rel)
        else:
            self._fds.move_to_end(rel)
        size = os.fstat(fd).st_size
        if size < self.sizes.get(rel, 0):
            # A consumer cut the file: what it took is its own; start from what is left.
            self._reset(rel, fd, size)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        self.sizes[rel] = size + len(data)
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

    def _reopen(self, rel: str) -> int:
        old = self._fds.pop(rel, None)
        if old is not None:
            # A consumer moved or deleted the file: what was written is with it.
            os.fdatasync(old)
            os.close(old)
        fd = self._open_fd(rel)
        try:
            st = os.fstat(fd)
            if self.ids.get(rel) != (st.st_dev, st.st_ino) or st.st_size < self.sizes.get(rel, 0):
                self._reset(rel, fd, st.st_size)
        except BaseException:
            os.close(fd)
            raise
        self._fds[rel] = fd
        while len(self._fds) > MAX_OPEN_FILES:
            # Still in _dirty: the next sync() covers it with syncfs.
            os.close(self._fds.popitem(last=False)[1])
        return fd

    def _reset(self, rel: str, fd: int, size: int) -> None:
        st = os.fstat(fd)
        if self._on_reset is not None:
            self._on_reset(rel, size, st.st_dev, st.st_ino)
        self.sizes[rel] = size
        self.ids[rel] = (st.st_dev, st.st_ino)

    def _open_fd(self, rel: str) -> int:
        path = self.target(rel)
        folder = os.path.dirname(path)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
        try:
            return os.open(path, flags, 0o644)
        except FileNotFoundError:  # a consumer removed the folder since
            self._folders.discard(folder)
            os.makedirs(folder, exist_ok=True)
            return os.open(path, flags, 0o644)

    def _is_current(self, rel: str, fd: int) -> bool:
        """Whether the cached descriptor is still the file at the outbox path."""
        try:
            st = os.stat(self.target(rel))
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self.ids.get(rel)


def recover(
    root: Path, sizes: dict[str, int], ids: dict[str, tuple[int, int]] | None = None
) -> list[tuple[str, int, int]]:
    """Cut every outbox file back to its committed size; returns (path, was, now) cuts.

    A crash between an outbox write and its checkpoint commit leaves bytes whose lines
    will be produced again from the checkpoint; cutting them is what makes delivery
    exactly-once. A file at the path that is not the one inboxd wrote (a consumer put
    it there) is left alone.
    """
    cuts: list[tuple[str, int, int]] = []
    ids = ids or {}
    for rel, size in sizes.items():
        path = os.path.join(root, rel)
        try:
            st = os.stat(path)
        except OSError:
            continue
        known = ids.get(rel)
        if known is not None and known != (st.st_dev, st.st_ino):
            continue
        actual = st.st_size
        if actual > size:
            os.truncate(path, size)
            cuts.append((rel, actual, size))
    return cuts
