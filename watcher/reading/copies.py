"""Recognising copies: logrotate's `copytruncate` and a new file on a known checkpoint.

`copytruncate` copies a live log to a new name, then cuts the original to zero. Read
naively, the copy doubles every line already delivered. A new file whose first bytes
and whose bytes before a checkpoint match a tracked (or just truncated) file of a
related name is that file's copy: it is read from that checkpoint on, into the same
outbox file, and the truncated original is read from the start. A copy shorter than the
checkpoint its original had when cut holds only lines already read from the original.
"""

from __future__ import annotations

import os
import posixpath
import time

from store.checkpoints import CopySource, TrackedFile
from watcher.reading.tailer import (
    FINGERPRINT_BYTES,
    count_lines,
    fingerprint,
    head_matches,
    tail_print,
)

# A possible copy still being written is looked at again for this long before it is read
# as a file of its own.
COPY_WAIT_S = 10.0
WAIT = "wait"


def is_related(original: str, candidate: str) -> bool:
    """Names logrotate gives a copy: same folder, and the original's stem at the start
    (app.log -> app.log.1, app.log-20261201, app-20261201.log)."""
    folder, name = posixpath.split(original)
    cfolder, cname = posixpath.split(candidate)
    stem = name.split(".", 1)[0]
    return folder == cfolder and cname != name and bool(stem) and cname.startswith(stem)


def source_of(tracked: TrackedFile, now: float) -> CopySource:
    return CopySource(
        tracked.fp_len, tracked.fingerprint, tracked.offset, tracked.lines, tracked.tail,
        tracked.outbox, tracked.path, now,
    )  # fmt: skip


def short_copy(fd: int, size: int, s: CopySource) -> CopySource:
    """The checkpoint of a complete copy shorter than the truncated original's: its end.

    The original was read past the point where it was copied, so every line of the copy
    is delivered already; its line count is taken from the copy itself.
    """
    return s._replace(offset=size, lines=count_lines(fd, size), tail=tail_print(fd, size))


class CopyMatcher:
    """Checkpoints a copy may resume from; processing thread only."""

    def __init__(self, sources: list[CopySource]) -> None:
        self.sources = list(sources)
        self.new: list[CopySource] = []
        self._index: dict[tuple[int, str], list[TrackedFile]] | None = None

    def remember(self, tracked: TrackedFile) -> None:
        """A tracked file was truncated or replaced: a copy of it may appear."""
        if tracked.offset > 0:
            source = source_of(tracked, time.time())
            self.sources.append(source)
            self.new.append(source)

    def forget_index(self) -> None:
        """Tracked files changed (a new pass): the live index is built again when needed."""
        self._index = None

    def match(
        self,
        fd: int,
        size: int,
        rel: str,
        files: dict[tuple[int, int], TrackedFile],
        *,
        waited: bool = False,
    ) -> CopySource | str | None:
        """The checkpoint the new file `fd` (at `rel`) is a copy of, if any.

        A copy of a truncated file shorter than the checkpoint it had when cut is
        complete (logrotate cuts only once its copy is written) and holds nothing unread
        (short_copy). WAIT when it starts like a copy of a file still tracked and not yet
        truncated (perhaps still being written: logrotate copies 8 KiB at a time).
        Resuming from a live file's checkpoint now would double what that file still
        gives before logrotate cuts it; the checkpoint it has when cut (a source) is the
        right one. Once `waited` (the file was held back COPY_WAIT_S), a live file's
        current checkpoint is taken.
        """
        head = os.pread(fd, FINGERPRINT_BYTES, 0)
        if not head:
            return None
        source = self._from_sources(fd, size, rel, head)
        if source is not None:
            return source
        waiting = False
        for t in self._live(files).get((len(head), fingerprint(head)), ()):
            if t.state != "gone":
                s = source_of(t, time.time())
                if self._starts_like(head, rel, s):
                    if not waited or s.offset > size:
                        waiting = True
                    elif self._tail_fits(fd, s):
                        return s
        return WAIT if waiting and not waited else None

    def _from_sources(self, fd: int, size: int, rel: str, head: bytes) -> CopySource | None:
        """The truncated file `fd` is a copy of: one whose checkpoint and the bytes before
        it are in `fd`, else the latest one cut past the end of `fd` (a short copy)."""
        short = -1
        for i in range(len(self.sources) - 1, -1, -1):
            s = self.sources[i]
            if not self._starts_like(head, rel, s):
                continue
            if s.offset <= size and self._tail_fits(fd, s):
                del self.sources[i]
                return s
            if s.offset > size and short < 0:
                short = i
        return short_copy(fd, size, self.sources.pop(short)) if short >= 0 else None

    @staticmethod
    def _starts_like(head: bytes, rel: str, s: CopySource) -> bool:
        return (
            s.offset > 0 and is_related(s.path, rel) and head_matches(head, s.fp_len, s.fingerprint)
        )

    @staticmethod
    def _tail_fits(fd: int, s: CopySource) -> bool:
        return not s.tail or tail_print(fd, s.offset) == s.tail

    def _live(
        self, files: dict[tuple[int, int], TrackedFile]
    ) -> dict[tuple[int, str], list[TrackedFile]]:
        """Tracked files by (fingerprint length, fingerprint), built once per pass."""
        if self._index is None:
            index: dict[tuple[int, str], list[TrackedFile]] = {}
            for t in files.values():
                if t.offset > 0:
                    index.setdefault((t.fp_len, t.fingerprint), []).append(t)
            self._index = index
        return self._index
