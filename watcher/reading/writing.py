"""From an open input file to the outbox: read chunks, route them, append the results.

Part of the processing thread. Lines are routed before they are written, so a fault of
one file is found (its outbox opened) before any of its lines is routed; what is
written waits in the outbox for the next commit with the dead letters of the same lines.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from cli.inputs import Multiline
from sinks.outbox import Outbox
from sinks.writer import SinkWriter
from store.checkpoints import TrackedFile
from store.live.telemetry import Telemetry
from store.paths import shown
from store.records import DeadLetter, ErrorRecord, SinkLines
from watcher.reading.faults import SharedFault, reason_of
from watcher.reading.multiline import records_of, runs
from watcher.reading.poison import PoisonGuard
from watcher.reading.sniff import SNIFF_BYTES, not_text
from watcher.reading.tailer import read_chunk

log = logging.getLogger("inboxd.watcher")

FILE_BUDGET_BYTES = 8 * 1024 * 1024

# What routing a chunk gives: outbox lines, dead letters, and lines for each sink.
Routing = tuple[list[str], list[DeadLetter], SinkLines]
RouteFn = Callable[[list[str], str, int], Routing]


class OutboxWriter:
    """Reads, routes and writes; keeps what the next commit must hold."""

    def __init__(
        self, outbox: Outbox, route: RouteFn, telemetry: Telemetry, guard: PoisonGuard | None
    ) -> None:
        self.outbox = outbox
        self.route = route
        self.telemetry = telemetry
        self.guard = guard
        self.deadletters: list[DeadLetter] = []
        self.pending_bytes = 0
        self.sinks: SinkWriter | None = None

    def committed(self) -> None:
        self.deadletters = []
        self.pending_bytes = 0

    def read_chunks(
        self,
        fd: int,
        tracked: TrackedFile,
        *,
        final: bool,
        size: int,
        max_line_bytes: int,
        multiline: Multiline | None = None,
    ) -> bool:
        """Read until EOF or the file's budget is spent; True when data remains.

        With `multiline`, the checkpoint moves only past complete records: the lines of
        a record that may go on are read again later.
        """
        read = 0
        name = shown(tracked.path)
        while read < FILE_BUDGET_BYTES:
            start = tracked.offset
            if start >= size and not final and tracked.state != "skipping":
                return False
            chunk = read_chunk(fd, tracked, max_line_bytes=max_line_bytes, final=final, size=size)
            if chunk.skipped:
                self._report_skipped(name, chunk.skipped, max_line_bytes)
            lines, raw = len(chunk.lines), chunk.raw
            if multiline is not None:
                recs, chunk = records_of(fd, chunk, multiline, final=final, size=size,
                                         max_line_bytes=max_line_bytes)  # fmt: skip
                lines = recs.lines
                if recs.texts:
                    self._route_runs(tracked, recs.texts, recs.line_nos, name)
            elif chunk.lines:
                self._route_runs(tracked, chunk.lines, [], name, first=chunk.first_line_no)
            tracked.offset, tracked.lines = chunk.end_offset, chunk.end_lines
            tracked.state = "skipping" if chunk.skipping else "active"
            tracked.updated = time.time()
            if start == 0 and chunk.end_offset > 0:
                self.sniff(fd, raw, chunk.end_offset, name)
            nbytes = chunk.end_offset - start
            if nbytes <= 0:
                return False
            read += nbytes
            self.telemetry.add_counts(bytes_read=nbytes, lines_read=lines)
        return True

    def _route_runs(
        self,
        tracked: TrackedFile,
        texts: list[str],
        line_nos: list[int],
        name: str,
        *,
        first: int | None = None,
    ) -> None:
        """Route lines (numbered from `first`) or records (numbered by `line_nos`, one
        call per run of consecutive numbers); one outbox write."""
        out: list[str] = []
        batches = [(texts, first)] if first is not None else runs(texts, line_nos)
        for records, first_no in batches:
            if self.guard is not None:
                o, dead, sunk = self.guard.route(self.route, tracked.key, records, name, first_no)
            else:
                o, dead, sunk = self.route(records, name, first_no)
            out += o
            self.deadletters.extend(dead)
            if sunk:
                self.to_sinks(tracked.outbox, name, sunk)
        self._write(tracked.outbox, out, name)

    def to_sinks(self, outbox_rel: str, name: str, sunk: SinkLines) -> None:
        if self.sinks is not None:
            self.pending_bytes += self.sinks.add(outbox_rel, name, sunk)

    def _write(self, rel: str, out: list[str], file: str) -> None:
        if not out:
            return
        try:
            text = "\n".join(out)
        except TypeError:
            out = self._only_text(out, file)
            if not out:
                return
            text = "\n".join(out)
        try:
            data = (text + "\n").encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            # A processor emitted a lone surrogate: write "?" for it rather than let the
            # engine die on the same line at every restart.
            data = (text + "\n").encode("utf-8", "replace")
        try:
            self.outbox.append(rel, data)
        except OSError as exc:
            raise SharedFault("disk", reason_of(exc, f"outbox {shown(rel)}")) from exc
        self.pending_bytes += len(data)
        self.telemetry.add_counts(lines_out=len(out))

    def _only_text(self, out: list[Any], file: str) -> list[str]:
        """Dead-letter outbox lines that are not text (a processor emitted a non-str)."""
        kept: list[str] = []
        for line in out:
            if isinstance(line, str):
                kept.append(line)
            else:
                self.deadletters.append(
                    DeadLetter(time.time(), file, None, "end", "outbox",
                               f"TypeError: outbox line must be str, got {type(line).__name__}",
                               repr(line))
                )  # fmt: skip
        return kept

    def sniff(self, fd: int, raw: bytes, end: int, name: str) -> None:
        """Flag, once, a file whose first bytes (just read from its start) are not text."""
        sample = raw[:SNIFF_BYTES] if raw else os.pread(fd, min(end, SNIFF_BYTES), 0)
        message = not_text(name, sample)
        if message is None:
            return
        self.telemetry.add_errors([ErrorRecord(time.time(), "inbox", message, name, None, None)])
        log.warning(message, extra={"event": "file_not_text", "processor": "inbox",
                                    "file": name})  # fmt: skip

    def _report_skipped(self, name: str, skipped: list[tuple[int, int]], limit: int) -> None:
        now = time.time()
        records = [
            ErrorRecord(
                now,
                "inbox",
                f"LineTooLong: line of {size} bytes or more skipped (max_line_bytes is {limit})",
                name,
                line_no,
                None,
            )
            for line_no, size in skipped
        ]
        self.telemetry.add_errors(records)
        for r in records:
            extra = {"event": "error", "processor": "inbox", "file": r.file, "line_no": r.line_no}
            log.warning(r.message, extra=extra)
