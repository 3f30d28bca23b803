"""Input files kept open between passes (processing thread only).

A file deleted while it is being read is read to its end through the descriptor already
open; a file whose budget ran out is taken up again without a new open. At most
MAX_INPUT_FDS stay open; on "too many open files" half of them are let go and the open
is tried once more before it counts as a fault of that file.
"""

from __future__ import annotations

import errno
import os
from collections import OrderedDict

from watcher.reading.tailer import open_regular

MAX_INPUT_FDS = 64


class InputFiles:
    def __init__(self) -> None:
        self._fds: OrderedDict[tuple[int, int], int] = OrderedDict()

    def get(self, key: tuple[int, int]) -> int | None:
        return self._fds.get(key)

    def open(self, key: tuple[int, int], path: str) -> tuple[int, os.stat_result] | None:
        """The descriptor of file `key` (at `path` when not open yet); None when `path`
        holds nothing regular or another file now. OSError: a fault of that file."""
        fd = self._fds.get(key)
        if fd is not None:
            self._fds.move_to_end(key)
            return fd, os.fstat(fd)
        try:
            opened = open_regular(path)
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE) or not self._fds:
                raise
            for _ in range(max(len(self._fds) // 2, 1)):
                os.close(self._fds.popitem(last=False)[1])
            opened = open_regular(path)
        if opened is None:
            return None
        fd, st = opened
        if (st.st_dev, st.st_ino) != key:
            os.close(fd)
            return None
        self._fds[key] = fd
        while len(self._fds) > MAX_INPUT_FDS:
            os.close(self._fds.popitem(last=False)[1])
        return fd, st

    def close(self, key: tuple[int, int]) -> None:
        fd = self._fds.pop(key, None)
        if fd is not None:
            os.close(fd)

    def close_all(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
