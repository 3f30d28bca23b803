"""Knowing files by identity: a new file, a copy of a known one, or a known one changed.

Used by the reader (processing thread only). A file seen for the first time is read from
its start, unless it is a copy of a tracked or just truncated file (watcher/reading/copies.py);
a known inode is compared with its checkpoint before it is read: the same file (perhaps
renamed), cut short (read again from the start), or another file on a reused inode.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from store.checkpoints import CopySource, TrackedFile
from store.paths import shown
from watcher.reading.copies import COPY_WAIT_S, WAIT, CopyMatcher
from watcher.reading.tailer import check_identity, fingerprint

log = logging.getLogger("inboxd.watcher")


class Identities:
    def __init__(
        self,
        files: dict[tuple[int, int], TrackedFile],
        copies: CopyMatcher,
        clock: Callable[[], float],
    ) -> None:
        self.files = files
        self.copies = copies
        self.clock = clock
        # New files that start like a copy still being written: (path, first seen).
        self.copy_wait: dict[tuple[int, int], tuple[str, float]] = {}

    def new(self, key: tuple[int, int], rel: str, fd: int, size: int) -> TrackedFile | None:
        """A checkpoint for a file seen for the first time: from its start, or from the
        checkpoint it is a copy of; None while it may be a copy not yet placeable (still
        being written, or its original not yet truncated), at most COPY_WAIT_S."""
        now = time.time()
        held = self.copy_wait.get(key)
        waited = held is not None and self.clock() - held[1] >= COPY_WAIT_S
        source = self.copies.match(fd, size, rel, self.files, waited=waited)
        if source == WAIT:
            # Under its latest name: logrotate renames copies along (app.log.1 -> .2).
            self.copy_wait[key] = (rel, held[1] if held is not None else self.clock())
            return None
        self.copy_wait.pop(key, None)
        if not isinstance(source, CopySource):
            tracked = TrackedFile(*key, 0, fingerprint(b""), rel, 0, 0, rel, now, now)
            log.info("file opened", extra={"event": "file_opened", "file": shown(rel)})
        else:
            tracked = TrackedFile(
                *key, 0, fingerprint(b""), rel, source.offset, source.lines,
                source.outbox, now, now, tail=source.tail,
            )  # fmt: skip
            log.info("file is a copy; read from its checkpoint on",
                     extra={"event": "file_copy", "file": shown(rel),
                            "from": shown(source.path), "offset": source.offset})  # fmt: skip
        self.files[key] = tracked
        check_identity(fd, tracked, size)  # takes its first fingerprint
        return tracked

    def check(self, fd: int, tracked: TrackedFile, size: int, rel: str) -> None:
        """Compare a known inode with its checkpoint before reading it.

        A file found under another name with content that no longer matches is a new
        file on a reused inode, not a rename of a truncated one: it gets its own outbox.
        """
        verdict = check_identity(fd, tracked, size)
        if verdict == "truncated" and rel != tracked.path:
            verdict = "replaced"
        if verdict == "same":
            if rel != tracked.path:
                extra = {"event": "file_rotated", "file": shown(rel), "from": shown(tracked.path)}
                log.info("file renamed", extra=extra)
                tracked.path = rel
            return
        log.info(f"file {verdict}", extra={"event": f"file_{verdict}", "file": shown(rel)})
        self.copies.remember(tracked)
        tracked.path = rel
        tracked.offset = tracked.lines = 0
        tracked.state = "active"
        tracked.fp_len, tracked.fingerprint, tracked.tail = 0, fingerprint(b""), ""
        if verdict == "replaced":
            tracked.first_seen = time.time()
            tracked.outbox = rel
        check_identity(fd, tracked, size)
