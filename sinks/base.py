"""The one interface every sink type implements, and where each call stands in a commit.

A sink type is one module of this package: a frozen `SinkSpec` subclass parsed from its
`[sinks.NAME]` table, and a `Sink` the processing thread feeds. Each commit of the
processing thread runs, in this order:

1. `add()` as routed chunks bring lines for the sink (a file sink writes them now, into
   outbox files that the commit syncs with the outbox);
2. `before_commit()` after the outbox sync: make the lines durable where they go
   (stdout written, a sqlite sink's rows committed in its own database);
3. `in_commit(db)` inside the state database's transaction that moves the checkpoints:
   a sqlite sink's position, a spooled sink's lines (its spool);
4. `committed()` once that transaction is durable: count, and wake a sender.

The built-in `end` sink is the outbox itself (sinks/outbox.py): the reader appends to it
as chunks are routed (the hot path, no per-sink dispatch), syncs it first in every commit
(before step 2), and the checkpoint transaction records each file's size and identity.

A spooled sink (http, nats) also has a sender thread that takes the spool from there
(sinks/sender.py). When the reader is dropped (a fault of the world) its sinks are
dropped with it: what waited is routed again from the checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

import sqlite_utils

from store.errors import SharedFault, reason_of
from store.live.sinkboard import SinkBoard

if TYPE_CHECKING:
    from sinks.outbox import Outbox
    from sinks.sender import SpoolSender
    from store.checkpoints import CheckpointStore


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """One `[sinks.NAME]` table as configured; each type adds its own keys."""

    KEYS: ClassVar[tuple[str, ...]] = ("type",)
    # A spooled sink's lines wait in `inboxd.db` for a sender thread; reading pauses while
    # it fails or holds `max_pending` lines.
    SPOOLED: ClassVar[bool] = False

    name: str
    type: str

    @classmethod
    def parse(cls, name: str, table: dict[str, Any], where: str) -> SinkSpec:
        """The spec of `table` (its keys already checked against KEYS); ConfigError."""
        return cls(name, table["type"])

    @property
    def max_pending(self) -> int:
        """Lines a spooled sink may hold before reading pauses (0: not spooled)."""
        return 0

    def describe(self, outbox: str, state_dir: str) -> str:
        """One line saying where the sink's lines go (`check`, `/sinks`)."""
        return self.type

    def check(self, state_dir: Path, *, strict: bool) -> str | None:
        """Start-up check of what the sink needs outside (ConfigError when it cannot
        work); returns a warning for what may come right by itself (a server not up).

        `strict` is False for `check`, which never waits long on the outside world.
        """
        return None

    def build(self, ctx: SinkContext) -> Sink:
        """The processing thread's side of the sink."""
        raise NotImplementedError

    def sender(self, ctx: SenderContext) -> SpoolSender | None:
        """The sender thread of a spooled sink; None for the others."""
        return None


@dataclass(frozen=True, slots=True)
class SinkContext:
    """What the processing thread's sinks may use: the outbox, the board, the state."""

    outbox: Outbox
    board: SinkBoard
    state_dir: Path
    stdout: TextIO | None = None


@dataclass(frozen=True, slots=True)
class SenderContext:
    """What a sender thread may use: its own connection to `db_path`, the board."""

    board: SinkBoard
    db_path: Path
    version: str
    keep_line: Callable[[str], str | None] = lambda line: line


class Sink:
    """One configured sink on the processing thread's side; not thread-safe.

    The defaults do nothing, so a type implements only the steps it stands in.
    """

    def __init__(self, spec: SinkSpec, ctx: SinkContext) -> None:
        self.spec = spec
        self.name = spec.name
        self.board = ctx.board
        self.count = 0  # lines added since the last commit

    def open(self, store: CheckpointStore) -> dict[str, int]:
        """Agree with the state database before any write; returns positions to record."""
        return {}

    def reopened(self) -> None:
        """The engine opened again after a fault: the sink is taken to work until a write
        says otherwise (a spooled sink's sender says so itself)."""
        if not self.spec.SPOOLED:
            self.board.recovered(self.name)

    def add(self, outbox_rel: str, file: str, numbers: list[int], texts: list[str]) -> None:
        """Lines of one routed chunk of input `outbox_rel` (shown as `file`)."""
        self.count += len(texts)

    def before_commit(self) -> None:
        """After the outbox sync, before the checkpoints: make the lines durable."""

    def in_commit(self, db: sqlite_utils.Database) -> None:
        """Inside the state database's transaction that moves the checkpoints."""

    def committed(self) -> bool:
        """The commit is durable; returns True when a sender has new lines to send."""
        n, self.count = self.count, 0
        if n:
            self.board.delivered(self.name, n)
        else:  # a commit went through: a fault that stopped this sink is gone
            self.board.recovered(self.name)
        return False

    def close(self) -> None:
        """Release what the sink holds open (the processing thread's connections)."""

    def fault(self, exc: BaseException, what: str = "") -> SharedFault:
        """The sink cannot be written: counted on the board, the engine pauses."""
        reason = reason_of(exc, f"sink {self.name}" + (f" {what}" if what else ""))
        self.board.failed(self.name, reason)
        return SharedFault("sinks", reason)
