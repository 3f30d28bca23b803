"""The file side of the processing thread: which files to read, reading them, committing.

Owned by the processing thread (not thread-safe). It keeps the table of tracked files,
the outbox and the checkpoint connection, and makes sure a checkpoint never moves past
lines the outbox does not durably hold.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from processors.options import Settings
from store.checkpoints import CheckpointStore
from store.outbox import Outbox
from store.records import DeadLetter, ErrorRecord
from store.telemetry import Telemetry
from watcher.tailer import (
    TrackedFile,
    check_identity,
    fingerprint,
    is_eligible_relpath,
    open_regular,
    read_chunk,
    scan,
)

log = logging.getLogger("inboxd.watcher")

FILE_BUDGET_BYTES = 8 * 1024 * 1024
COMMIT_BYTES = 16 * 1024 * 1024

RouteFn = Callable[[list[str], str, int], tuple[list[str], list[DeadLetter]]]


class Found(NamedTuple):
    key: tuple[int, int]
    rel: str
    size: int = -1  # from a scan's stat; -1 when unknown
    mtime_ns: int = -1


class FileReader:
    """Reads tracked files chunk by chunk and commits their progress."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: CheckpointStore,
        outbox: Outbox,
        files: dict[tuple[int, int], TrackedFile],
        route: RouteFn,
        telemetry: Telemetry,
    ) -> None:
        self.settings = settings
        self.inbox = settings.inbox.resolve()
        self._prefix = str(self.inbox).rstrip("/") + "/"
        self.store = store
        self.outbox = outbox
        self.files = files
        self.route = route
        self.telemetry = telemetry
        self._touched: dict[tuple[int, int], TrackedFile] = {}
        self._dead: list[DeadLetter] = []
        self._forget: list[tuple[int, int]] = []
        self._pending_bytes = 0
        # Counts commits, so that /files is rebuilt only after something changed.
        self.generation = 0
        self._partials: dict[tuple[int, int], float] = {}

    # -- choosing files -----------------------------------------------------------------

    def scan(self) -> dict[tuple[int, int], Found]:
        return {
            key: Found(key, rel, st.st_size, st.st_mtime_ns)
            for key, (rel, st) in scan(self.inbox).items()
        }

    def changed(self, found: Iterable[Found]) -> list[Found]:
        """The scanned files that may hold something new (a full scan reads no others)."""
        todo: list[Found] = []
        for item in found:
            t = self.files.get(item.key)
            if (
                t is None
                or t.path != item.rel
                or t.state != "active"
                or t.offset < item.size
                or t.size != item.size
                or t.mtime_ns != item.mtime_ns
            ):
                todo.append(item)
        return todo

    def resolve(self, paths: Iterable[str]) -> list[Found]:
        """Turn paths from watch events into files worth reading."""
        found: dict[tuple[int, int], Found] = {}
        prefix = self._prefix
        for path in paths:
            if not path.startswith(prefix):
                path = os.path.abspath(path)
                if not path.startswith(prefix):
                    continue
            rel = path[len(prefix) :]
            if not rel or not is_eligible_relpath(rel):
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                found[key] = Found(key, rel)
        return list(found.values())

    def mark_gone(self, found: dict[tuple[int, int], Found], *, expiry_s: float) -> None:
        """Note files a full scan no longer sees; forget them after `expiry_s`."""
        now = time.time()
        for key, tracked in list(self.files.items()):
            if key in found:
                continue
            if tracked.state != "gone":
                tracked.state, tracked.updated = "gone", now
                self._touched[key] = tracked
                self._partials.pop(key, None)
                log.info(
                    "file finished",
                    extra={
                        "event": "file_finished",
                        "file": tracked.path,
                        "offset": tracked.offset,
                    },
                )
            elif now - tracked.updated >= expiry_s:
                del self.files[key]
                self._touched.pop(key, None)
                self._forget.append(key)

    def due_partials(self) -> list[Found]:
        """Files whose last line has waited for its newline longer than partial_timeout."""
        limit = time.monotonic() - self.settings.partial_timeout
        due = [k for k, changed in self._partials.items() if changed <= limit]
        return [Found(k, self.files[k].path) for k in due if k in self.files]

    def next_partial_deadline(self) -> float:
        if not self._partials:
            return float("inf")
        return min(self._partials.values()) + self.settings.partial_timeout

    # -- reading ------------------------------------------------------------------------

    def process(
        self, found: Iterable[Found], *, final: bool, tick: Callable[[], bool] | None = None
    ) -> list[str]:
        """Read the given files; returns the paths that still have data (budget spent).

        `tick` is called between files (watchdog pings); when it returns True the pass
        ends early, and what was not read waits for the next scan.
        """
        todo = sorted(found, key=self._age)
        self._adopt_outboxes(todo)
        again: list[str] = []
        for item in todo:
            if self._read(item, final):
                again.append(self._prefix + item.rel)
            if self._pending_bytes >= COMMIT_BYTES:
                self.commit()
            if tick is not None and tick():
                break
        return again

    def _age(self, item: Found) -> float:
        tracked = self.files.get(item.key)
        return tracked.first_seen if tracked is not None else float("inf")

    def _adopt_outboxes(self, todo: list[Found]) -> None:
        """Record the pre-existing size of outbox files before the first write to them."""
        sizes: dict[str, int] = {}
        for item in todo:
            tracked = self.files.get(item.key)
            rel = tracked.outbox if tracked is not None else item.rel
            if not self.outbox.is_known(rel):
                sizes[rel] = self.outbox.adopt(rel)
        if sizes:
            self.store.commit([], sizes, [], now=time.time())

    def _track(self, item: Found, fd: int, size: int) -> TrackedFile:
        """The checkpoint of the open file `fd`: known, renamed, cut short or new."""
        now = time.time()
        tracked = self.files.get(item.key)
        if tracked is None:
            tracked = TrackedFile(
                *item.key, 0, fingerprint(b""), item.rel, 0, 0, item.rel, now, now
            )
            self.files[item.key] = tracked
            log.info("file opened", extra={"event": "file_opened", "file": item.rel})
            check_identity(fd, tracked, size)  # takes its first fingerprint
        else:
            self._check(fd, tracked, size, item.rel)
        tracked.state = "skipping" if tracked.state == "skipping" else "active"
        self._touched[item.key] = tracked
        return tracked

    def _read(self, item: Found, final: bool) -> bool:
        opened = open_regular(self._prefix + item.rel)
        if opened is None or (opened[1].st_dev, opened[1].st_ino) != item.key:
            # Gone or replaced under this name: a waiting last line can no longer be read
            # here, and leaving it due would wake the loop without pause until a rescan.
            self._partials.pop(item.key, None)
            if opened is not None:
                os.close(opened[0])
            return False
        fd, st = opened
        try:
            tracked = self._track(item, fd, st.st_size)
            more = self._read_chunks(fd, tracked, final, st.st_size)
            self._note_partial(tracked, st.st_size, final)
            tracked.mtime_ns = st.st_mtime_ns
            return more
        finally:
            os.close(fd)

    def _check(self, fd: int, tracked: TrackedFile, size: int, rel: str) -> None:
        """Compare a known inode with its checkpoint before reading it.

        A file found under another name with content that no longer matches is a new
        file on a reused inode, not a rename of a truncated one: it gets its own outbox.
        """
        verdict = check_identity(fd, tracked, size)
        if verdict == "truncated" and rel != tracked.path:
            verdict = "replaced"
        if verdict == "same":
            if rel != tracked.path:
                extra = {"event": "file_rotated", "file": rel, "from": tracked.path}
                log.info("file renamed", extra=extra)
                tracked.path = rel
            return
        log.info(f"file {verdict}", extra={"event": f"file_{verdict}", "file": rel})
        tracked.path = rel
        tracked.offset = tracked.lines = 0
        tracked.state = "active"
        tracked.fp_len, tracked.fingerprint = 0, fingerprint(b"")
        if verdict == "replaced":
            tracked.first_seen = time.time()
            if tracked.outbox != rel:
                tracked.outbox = rel
                if not self.outbox.is_known(rel):
                    size_now = self.outbox.adopt(rel)
                    self.store.commit([], {rel: size_now}, [], now=time.time())
        check_identity(fd, tracked, size)

    def _read_chunks(self, fd: int, tracked: TrackedFile, final: bool, size: int) -> bool:
        """Read until EOF or the file's budget is spent; True when data remains."""
        read = 0
        limit = self.settings.max_line_bytes
        while read < FILE_BUDGET_BYTES:
            start = tracked.offset
            if start >= size and not final and tracked.state != "skipping":
                return False
            chunk = read_chunk(fd, tracked, max_line_bytes=limit, final=final, size=size)
            if chunk.skipped:
                self._report_skipped(tracked, chunk.skipped)
            if chunk.lines:
                out, dead = self.route(chunk.lines, tracked.path, chunk.first_line_no)
                self._write(tracked.outbox, out, tracked.path, chunk.first_line_no)
                self._dead.extend(dead)
            tracked.offset, tracked.lines = chunk.end_offset, chunk.end_lines
            tracked.state = "skipping" if chunk.skipping else "active"
            tracked.updated = time.time()
            nbytes = chunk.end_offset - start
            if nbytes <= 0:
                return False
            read += nbytes
            self.telemetry.add_counts(bytes_read=nbytes, lines_read=len(chunk.lines))
        return True

    def _write(self, rel: str, out: list[str], file: str, first_line_no: int) -> None:
        if not out:
            return
        try:
            text = "\n".join(out)
        except TypeError:
            out = self._only_text(out, file, first_line_no)
            if not out:
                return
            text = "\n".join(out)
        try:
            data = (text + "\n").encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            # A processor emitted a lone surrogate: write "?" for it rather than let the
            # engine die on the same line at every restart.
            data = (text + "\n").encode("utf-8", "replace")
        self.outbox.append(rel, data)
        self._pending_bytes += len(data)
        self.telemetry.add_counts(lines_out=len(out))

    def _only_text(self, out: list[Any], file: str, first_line_no: int) -> list[str]:
        """Dead-letter outbox lines that are not text (a processor emitted a non-str)."""
        kept: list[str] = []
        for line in out:
            if isinstance(line, str):
                kept.append(line)
            else:
                self._dead.append(
                    DeadLetter(time.time(), file, None, "end", "outbox",
                               f"TypeError: outbox line must be str, got {type(line).__name__}",
                               repr(line))
                )  # fmt: skip
        return kept

    def _report_skipped(self, tracked: TrackedFile, skipped: list[tuple[int, int]]) -> None:
        now = time.time()
        records = [
            ErrorRecord(
                now,
                "inbox",
                f"LineTooLong: line of {size} bytes or more skipped "
                f"(max_line_bytes is {self.settings.max_line_bytes})",
                tracked.path,
                line_no,
                None,
            )
            for line_no, size in skipped
        ]
        self.telemetry.add_errors(records)
        for r in records:
            extra = {"event": "error", "processor": "inbox", "file": r.file, "line_no": r.line_no}
            log.warning(r.message, extra=extra)

    def _note_partial(self, tracked: TrackedFile, size: int, final: bool) -> None:
        key = tracked.key
        if size != tracked.size:
            tracked.changed_at = time.monotonic()
            tracked.size = size
        if tracked.offset < size and not final and tracked.state != "skipping":
            self._partials[key] = tracked.changed_at
        else:
            self._partials.pop(key, None)

    # -- committing ---------------------------------------------------------------------

    def commit(self) -> None:
        """fsync the outbox, then one transaction: checkpoints, outbox sizes, dead letters."""
        if not (self._touched or self._dead or self._forget):
            return
        synced = self.outbox.sync()
        sizes = {rel: self.outbox.sizes[rel] for rel in synced}
        self.store.commit(
            list(self._touched.values()), sizes, self._dead, now=time.time(), forget=self._forget
        )
        self._touched.clear()
        self._dead = []
        self._forget = []
        self._pending_bytes = 0
        self.generation += 1

    def close(self) -> None:
        self.outbox.close()
        self.store.close()


__all__ = ["FileReader", "Found", "Path"]
