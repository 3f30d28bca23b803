"""What the spooled sinks (http, nats) share on the processing thread's side: their
lines go into the spool inside the transaction that moves the checkpoints covering them,
so a line is either spooled and past its checkpoint or neither."""

from __future__ import annotations

from itertools import repeat

import sqlite_utils

from sinks import spool
from sinks.base import Sink, SinkContext, SinkSpec


class SpooledSink(Sink):
    def __init__(self, spec: SinkSpec, ctx: SinkContext) -> None:
        super().__init__(spec, ctx)
        self._rows: list[tuple[str | None, int | None, str]] = []

    def add(self, outbox_rel: str, file: str, numbers: list[int], texts: list[str]) -> None:
        self.count += len(texts)
        self._rows.extend(zip(repeat(file), numbers, texts, strict=False))

    def in_commit(self, db: sqlite_utils.Database) -> None:
        # Once per commit: the rows leave the list as they enter the transaction. Should
        # the transaction fail, the reader and its sinks are dropped and the lines routed
        # again from the checkpoints.
        rows, self._rows = self._rows, []
        if rows:
            spool.spool_lines(db.conn, self.name, rows)

    def committed(self) -> bool:
        n, self.count = self.count, 0
        if n:
            self.board.add_pending(self.name, n)
        return n > 0
