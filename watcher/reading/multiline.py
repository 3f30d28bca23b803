"""Per-file input settings: which `[[inputs]]` rule applies, multiline records, start at end.

`join_records` is the pure part: consecutive complete lines in, complete records out,
plus how many lines and bytes they used. The lines of a record that may still go on
are not consumed, so a checkpoint only ever falls between two records: after a crash
a record is read again whole, never split or doubled.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from cli.inputs import InputRule, Multiline
from store.checkpoints import TrackedFile
from store.paths import shown
from watcher.reading.filters import compile_globs
from watcher.reading.tailer import Chunk, tail_at

log = logging.getLogger("inboxd.watcher")

COUNT_CHUNK_BYTES = 1024 * 1024


class InputRules:
    """The first `[[inputs]]` rule whose glob matches a relative path (or None)."""

    def __init__(self, rules: tuple[InputRule, ...]) -> None:
        self._rules: list[tuple[re.Pattern[str], InputRule]] = []
        for rule in rules:
            pattern = compile_globs([rule.match])
            if pattern is not None:
                self._rules.append((pattern, rule))
        self._cache: dict[str, InputRule | None] = {}

    def __bool__(self) -> bool:
        return bool(self._rules)

    def rule_for(self, rel: str) -> InputRule | None:
        if not self._rules:
            return None
        try:
            return self._cache[rel]
        except KeyError:
            pass
        found = next((rule for pattern, rule in self._rules if pattern.match(rel)), None)
        if len(self._cache) >= 10_000:  # bounded whatever the inbox holds
            self._cache.clear()
        self._cache[rel] = found
        return found

    def multiline_for(self, rel: str) -> Multiline | None:
        rule = self.rule_for(rel)
        return None if rule is None else rule.multiline

    def starts_at_end(self, rel: str) -> bool:
        rule = self.rule_for(rel)
        return rule is not None and rule.read_from == "end"


class Records(NamedTuple):
    """Complete records and what they used of the lines they were cut from."""

    texts: list[str]  # each record, its lines joined with "\n"
    line_nos: list[int]  # the line number of each record's first line
    lines: int  # physical lines consumed
    nbytes: int  # bytes consumed


def join_records(
    lines: list[str], raw: bytes, first_line_no: int, rule: Multiline, *, flush: bool
) -> Records:
    """Join consecutive complete lines into records by `rule`.

    `raw` holds the bytes the lines were decoded from, each ending with a newline
    (needed only to measure an unconsumed last record). A line matching `rule.start`
    begins a record, any other line goes on the record before it; a record is complete
    when the next one begins or at `rule.max_lines` lines. The last record is complete
    too with `flush` (timeout, end of input); otherwise its lines are left unconsumed.
    """
    n = len(lines)
    if not n:
        return Records([], [], 0, 0)
    search = rule.start.search
    starts = [i for i, line in enumerate(lines) if search(line) is not None]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)  # lines before the first start are a record of their own
    starts.append(n)
    texts: list[str] = []
    line_nos: list[int] = []
    max_lines = rule.max_lines
    begin = 0
    for k in range(len(starts) - 1):
        begin, end = starts[k], starts[k + 1]
        while end - begin > max_lines:
            texts.append("\n".join(lines[begin : begin + max_lines]))
            line_nos.append(first_line_no + begin)
            begin += max_lines
        if end == n and not flush and end - begin < max_lines:
            break  # the last record may go on
        texts.append(lines[begin] if end - begin == 1 else "\n".join(lines[begin:end]))
        line_nos.append(first_line_no + begin)
        begin = end
    held = n - begin
    if not held:
        return Records(texts, line_nos, n, len(raw))
    return Records(texts, line_nos, begin, _start_of_last(raw, held))


def _start_of_last(raw: bytes, count: int) -> int:
    """Byte offset in `raw` (ending with a newline) where its last `count` lines begin."""
    end = len(raw) - 1
    for _ in range(count):
        end = raw.rfind(b"\n", 0, end)
    return end + 1


def runs(texts: list[str], line_nos: list[int]) -> list[tuple[list[str], int]]:
    """Records in groups whose line numbers go up by one (a processor call numbers the
    lines it is given first, first + 1, ...): (records, first line number) each.

    A group ends after a record of several lines, so each record keeps the number of its
    own first line.
    """
    out: list[tuple[list[str], int]] = []
    begin = 0
    for i in range(1, len(texts)):
        if line_nos[i] != line_nos[i - 1] + 1:
            out.append((texts[begin:i], line_nos[begin]))
            begin = i
    if texts:
        out.append((texts[begin:], line_nos[begin]))
    return out


def last_line_end(fd: int, size: int) -> tuple[int, int]:
    """(offset just after the last newline before `size`, newlines before it).

    Counted in bounded chunks, so a large file costs time but no memory.
    """
    offset, count, end = 0, 0, 0
    while offset < size:
        data = os.pread(fd, min(COUNT_CHUNK_BYTES, size - offset), offset)
        if not data:
            break
        n = data.count(b"\n")
        if n:
            count += n
            end = offset + data.rfind(b"\n") + 1
        offset += len(data)
    return end, count


def is_cut(fd: int, chunk: Chunk, size: int, max_line_bytes: int) -> bool:
    """Whether `chunk` ends before a complete or over-long line rather than at the end
    of what has been written: then a record that fills it cannot wait for more."""
    rest = size - chunk.end_offset
    if rest <= 0:
        return False
    want = min(rest, max_line_bytes + 1)
    probe = os.pread(fd, want, chunk.end_offset)
    return b"\n" in probe or len(probe) > max_line_bytes


def records_of(
    fd: int, chunk: Chunk, rule: Multiline, *, final: bool, size: int, max_line_bytes: int
) -> tuple[Records, Chunk]:
    """The complete records of `chunk` (read from file `fd` of `size` bytes), and the
    chunk ending where they do: the lines of a record that may go on are left unread."""
    recs = join_records(chunk.lines, chunk.raw, chunk.first_line_no, rule, flush=final)
    if chunk.lines and not recs.lines and is_cut(fd, chunk, size, max_line_bytes):
        # One record fills the chunk, or an over-long line follows it: it ends here.
        recs = join_records(chunk.lines, chunk.raw, chunk.first_line_no, rule, flush=True)
    if recs.lines != len(chunk.lines):
        start = chunk.end_offset - len(chunk.raw)
        chunk = dataclasses.replace(chunk, end_offset=start + recs.nbytes,
                                    end_lines=chunk.first_line_no - 1 + recs.lines)  # fmt: skip
    return recs, chunk


def hold_timeout(fd: int, size: int, rule: Multiline | None, partial_timeout: float) -> float:
    """How long unread bytes at a file's end wait for more before they are read anyway:
    a last line without newline waits partial_timeout, a last record `rule.timeout`
    (both, when the record's last line has no newline yet)."""
    if rule is None:
        return partial_timeout
    try:
        complete = size > 0 and os.pread(fd, 1, size - 1) == b"\n"
    except OSError:
        complete = False
    return rule.timeout if complete else max(rule.timeout, partial_timeout)


class StartAtEnd:
    """Files present at the daemon's first start whose rule says `read_from = "end"`.

    The first start is the one with no checkpoint and no outbox file in the state
    database. Each such file is tracked from the end of its last complete line as it was
    then (its earlier lines counted, so later line numbers stay true); a file made
    later, or seen on any later start, is read from its beginning.
    """

    def __init__(self, sizes: dict[tuple[int, int], int] | None = None) -> None:
        self.sizes = sizes or {}

    @classmethod
    def at_start(
        cls, rules: InputRules, *, first: bool, scan: Callable[[], Iterable[tuple[Any, ...]]]
    ) -> StartAtEnd:
        """`scan` gives (key, rel, size, ...) of every file in the inbox now."""
        if not first or not rules:
            return cls()
        return cls({item[0]: item[2] for item in scan() if rules.starts_at_end(item[1])})

    def place(self, fd: int, tracked: TrackedFile) -> None:
        """Move a newly tracked file to where it is read from (no-op for most)."""
        size = self.sizes.pop(tracked.key, None)
        if size is None or tracked.offset != 0:
            return
        tracked.offset, tracked.lines = last_line_end(fd, size)
        tracked.tail = tail_at(fd, tracked.offset)
        log.info("file read from its end", extra={"event": "file_at_end",
                 "file": shown(tracked.path), "offset": tracked.offset})  # fmt: skip
