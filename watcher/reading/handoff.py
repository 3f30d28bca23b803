"""Where the chunk loop sends what it reads to be routed, and what comes back.

The chunk loop (watcher/reading/writing.py) is one: it reads, submits each chunk to a
hand-off, and applies the results in the order the chunks were read. A hand-off routes
at once in the processing thread (InlineHandoff here, one chunk in flight) or in worker
processes (watcher/workers/pooled.py, a window of chunks in flight). Whoever builds the
reader chooses the hand-off, so reading never knows about worker processes.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple, Protocol, TypeVar

from store.records import DeadLetter, SinkLines
from watcher.reading import tailer
from watcher.reading.multiline import Records, runs
from watcher.reading.poison import PoisonGuard
from watcher.reading.routing import RouteFn, Routing
from watcher.reading.tailer import Chunk

Ticket = TypeVar("Ticket")


class Applied(NamedTuple):
    """What the results of one chunk add to the outbox and to the next commit."""

    out: bytes  # outbox bytes, lines ending with a newline
    lines_out: int
    deadletters: list[DeadLetter]
    sinks: list[SinkLines]  # one entry per routed run, in order


NOTHING = Applied(b"", 0, [], [])


class Handoff(Protocol[Ticket]):
    """Routes chunks for the chunk loop; owned by the processing thread.

    `window` chunks may be in flight: submitted, not yet applied. `apply` takes back the
    results of the oldest; `drop` forgets a submitted chunk when the reader is dropped
    (a shared fault), keeping whoever routes it in step.
    """

    @property
    def window(self) -> int: ...

    @property
    def chunk_bytes(self) -> int: ...

    @property
    def decodes(self) -> bool: ...

    def submit(
        self, chunk: Chunk, records: Records | None, key: tuple[int, int], name: str
    ) -> Ticket: ...

    def apply(self, ticket: Ticket, name: str) -> Applied: ...

    def drop(self, ticket: Ticket) -> None: ...


class InlineHandoff:
    """Routes each chunk at once in the processing thread, through the poison guard."""

    window = 1
    decodes = True

    def __init__(self, route: RouteFn, guard: PoisonGuard | None) -> None:
        self.route = route
        self.guard = guard

    @property
    def chunk_bytes(self) -> int:
        return tailer.CHUNK_BYTES

    def submit(
        self, chunk: Chunk, records: Records | None, key: tuple[int, int], name: str
    ) -> list[Routing]:
        """Route lines (numbered from the chunk's first) or records (one call per run of
        consecutive line numbers)."""
        if records is not None:
            batches = runs(records.texts, records.line_nos) if records.texts else []
        elif chunk.lines:
            batches = [(chunk.lines, chunk.first_line_no)]
        else:
            return []
        guard = self.guard
        if guard is None:
            return [self.route(texts, name, first) for texts, first in batches]
        return [guard.route(self.route, key, texts, name, first) for texts, first in batches]

    def apply(self, ticket: list[Routing], name: str) -> Applied:
        if not ticket:
            return NOTHING
        out: list[str] = []
        dead: list[DeadLetter] = []
        sinks: list[SinkLines] = []
        for o, d, sunk in ticket:
            out += o
            dead.extend(d)
            if sunk:
                sinks.append(sunk)
        data, lines_out = _encode(out, name, dead)
        return Applied(data, lines_out, dead, sinks)

    def drop(self, ticket: list[Routing]) -> None:
        return None


def _encode(out: list[Any], name: str, dead: list[DeadLetter]) -> tuple[bytes, int]:
    """Outbox bytes of the routed lines and how many; lines that are not text go to
    `dead` (a processor emitted a non-str)."""
    if not out:
        return b"", 0
    try:
        text = "\n".join(out)
    except TypeError:
        out = _only_text(out, name, dead)
        if not out:
            return b"", 0
        text = "\n".join(out)
    try:
        data = (text + "\n").encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # A processor emitted a lone surrogate: write "?" for it rather than let the
        # engine die on the same line at every restart.
        data = (text + "\n").encode("utf-8", "replace")
    return data, len(out)


def _only_text(out: list[Any], name: str, dead: list[DeadLetter]) -> list[str]:
    kept: list[str] = []
    for line in out:
        if isinstance(line, str):
            kept.append(line)
        else:
            dead.append(
                DeadLetter(time.time(), name, None, "end", "outbox",
                           f"TypeError: outbox line must be str, got {type(line).__name__}",
                           repr(line))
            )  # fmt: skip
    return kept
