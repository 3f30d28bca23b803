"""The chunk loop: from an open input file to the outbox, one chunk after another.

Part of the processing thread. Each chunk read is submitted to a hand-off (routing in
this thread, or in worker processes) and its results are applied in the order the
chunks were read: outbox bytes written, dead letters and sink lines kept for the next
commit, and only then the file's checkpoint moved. Lines are routed before they are
written, so a fault of one file is found (its outbox opened) before any of its lines is
routed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections import deque
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
from watcher.reading.handoff import Handoff
from watcher.reading.multiline import Records, records_of
from watcher.reading.sniff import SNIFF_BYTES, not_text
from watcher.reading.tailer import Chunk, read_chunk

log = logging.getLogger("inboxd.watcher")

FILE_BUDGET_BYTES = 8 * 1024 * 1024

# A chunk submitted to the hand-off and not applied yet: its ticket, and the chunk.
_Sent = tuple[Any, Chunk]


class OutboxWriter:
    """Reads, hands off, writes; keeps what the next commit must hold."""

    def __init__(
        self,
        outbox: Outbox,
        handoff: Handoff[Any],
        telemetry: Telemetry,
        *,
        commit_due: Callable[[int, TrackedFile], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.handoff = handoff
        self.telemetry = telemetry
        # Called with the window full: commits if enough is pending, while the workers
        # route what was sent ahead.
        self.commit_due = commit_due
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

        With `multiline`, a chunk is cut back to its last complete record, so the
        checkpoint moves only past complete records: the lines of a record that may go
        on are read again later.
        """
        name = shown(tracked.path)
        sent: deque[_Sent] = deque()
        try:
            more = self._read_ahead(fd, tracked, sent, name, final=final, size=size,
                                    max_line_bytes=max_line_bytes, multiline=multiline)  # fmt: skip
            while sent:
                self._apply(sent.popleft(), tracked, name)
        except BaseException:
            for ticket, _ in sent:  # the reader is dropped: keep the hand-off in step
                self.handoff.drop(ticket)
            raise
        return more

    def _read_ahead(
        self,
        fd: int,
        tracked: TrackedFile,
        sent: deque[_Sent],
        name: str,
        *,
        final: bool,
        size: int,
        max_line_bytes: int,
        multiline: Multiline | None,
    ) -> bool:
        """Read and submit chunks, applying the oldest as the window fills; True when
        the budget ran out before the end of the file."""
        handoff = self.handoff
        window = handoff.window
        # Plain lines go to a hand-off that does not decode them as the bytes read.
        decode = handoff.decodes or multiline is not None
        ahead = dataclasses.replace(tracked)  # where reading has got to
        read = 0
        while read < FILE_BUDGET_BYTES:
            start = ahead.offset
            if start >= size and not final and ahead.state != "skipping":
                return False
            chunk = read_chunk(fd, ahead, max_line_bytes=max_line_bytes, final=final,
                               size=size, chunk_bytes=handoff.chunk_bytes,
                               decode=decode)  # fmt: skip
            if chunk.skipped:
                self._report_skipped(name, chunk.skipped, max_line_bytes)
            lines, raw = chunk.count, chunk.raw
            records: Records | None = None
            if multiline is not None:
                records, chunk = records_of(fd, chunk, multiline, final=final, size=size,
                                            max_line_bytes=max_line_bytes)  # fmt: skip
                lines = records.lines
            sent.append((handoff.submit(chunk, records, tracked.key, name), chunk))
            ahead.offset, ahead.lines = chunk.end_offset, chunk.end_lines
            ahead.state = "skipping" if chunk.skipping else "active"
            if len(sent) >= window:
                self._apply_oldest(fd, tracked, sent, name, window)
            if start == 0 and chunk.end_offset > 0:
                self.sniff(fd, raw, chunk.end_offset, name)
            nbytes = chunk.end_offset - start
            if nbytes <= 0:
                return False
            read += nbytes
            self.telemetry.add_counts(bytes_read=nbytes, lines_read=lines)
        return True

    def _apply_oldest(
        self, fd: int, tracked: TrackedFile, sent: deque[_Sent], name: str, window: int
    ) -> None:
        """The window is full: apply the oldest chunks until there is room again."""
        # With one chunk in flight nothing is routed meanwhile: the commit waits for
        # the end of the file (FileReader.process), as it always did.
        if window > 1 and self.commit_due is not None:
            self.commit_due(fd, tracked)
        while len(sent) >= window:
            self._apply(sent.popleft(), tracked, name)

    def _apply(self, sent: _Sent, tracked: TrackedFile, name: str) -> None:
        """Hand one chunk's results to the sinks, write its outbox bytes, then move the
        checkpoint past it."""
        ticket, chunk = sent
        applied = self.handoff.apply(ticket, name)
        if applied.deadletters:
            self.deadletters.extend(applied.deadletters)
        # The sinks first: a sink that cannot take the lines pauses the engine before
        # the outbox holds any of them.
        for sunk in applied.sinks:
            self.to_sinks(tracked.outbox, name, sunk)
        if applied.out:
            try:
                self.outbox.append(tracked.outbox, applied.out)
            except OSError as exc:
                reason = reason_of(exc, f"outbox {shown(tracked.outbox)}")
                raise SharedFault("disk", reason) from exc
            self.pending_bytes += len(applied.out)
            self.telemetry.add_counts(lines_out=applied.lines_out)
        tracked.offset, tracked.lines = chunk.end_offset, chunk.end_lines
        tracked.state = "skipping" if chunk.skipping else "active"
        tracked.updated = time.time()

    def to_sinks(self, outbox_rel: str, name: str, sunk: SinkLines) -> None:
        if self.sinks is not None:
            self.pending_bytes += self.sinks.add(outbox_rel, name, sunk)

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
