"""The processing thread's side of the sinks: what each commit must carry to them.

Lines a processor sends to a sink (by emitting the sink's name as its tag) wait in the
sink with the chunk that produced them, and go out with the commit that moves that
chunk's checkpoint: each sink's steps (sinks/base.py) are called in the order the
sinks are configured.

When the reader is dropped (a fault of the world), everything waiting is dropped with
it: the lines will be routed again from the checkpoints. Opening reconciles each sink
with the position the state database committed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from sinks.base import Sink, SinkContext, SinkSpec
from sinks.outbox import Outbox
from sinks.registry import build_sinks
from store.checkpoints import CheckpointStore
from store.live.sinkboard import SinkBoard
from store.records import SinkLines


class SinkWriter:
    """Holds the sinks' lines until the commit that covers them; processing thread only."""

    def __init__(self, sinks: list[Sink], *, nudge: Callable[[], None] | None = None) -> None:
        self.sinks = {s.name: s for s in sinks}
        self.nudge = nudge

    def open(self, store: CheckpointStore) -> None:
        """Reconcile each sink with the state database (before any write)."""
        agreed: dict[str, int] = {}
        for sink in self.sinks.values():
            agreed.update(sink.open(store))
        if agreed:
            store.set_sink_positions(agreed)

    def reopened(self) -> None:
        """The engine opened again after a fault."""
        for sink in self.sinks.values():
            sink.reopened()

    def add(self, outbox_rel: str, file: str, lines: SinkLines) -> int:
        """Lines of one routed chunk of input `outbox_rel` (shown as `file`); returns
        about how many bytes wait for the commit (they count towards its size)."""
        size = 0
        for name, (numbers, texts) in lines.items():
            size += sum(map(len, texts)) + len(texts)
            self.sinks[name].add(outbox_rel, file, numbers, texts)
        return size

    def before_commit(self) -> None:
        """After the outbox sync and before the checkpoint."""
        for sink in self.sinks.values():
            sink.before_commit()

    def in_commit(self, db: sqlite_utils.Database) -> None:
        """Inside the state database's transaction that moves the checkpoints."""
        for sink in self.sinks.values():
            sink.in_commit(db)

    def committed(self) -> None:
        """The commit is durable: count what was delivered, wake the senders."""
        spooled = [sink.committed() for sink in self.sinks.values()]
        if any(spooled) and self.nudge is not None:
            self.nudge()

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()


def sink_writer(
    specs: tuple[SinkSpec, ...],
    outbox: Outbox,
    board: SinkBoard,
    state_dir: str,
    nudge: Callable[[], None] | None,
) -> SinkWriter | None:
    """The reader's SinkWriter, or None when the config names no sink."""
    if not specs:
        return None
    ctx = SinkContext(outbox, board, Path(state_dir), stdout=sys.stdout)
    return SinkWriter(build_sinks(specs, ctx), nudge=nudge)
