"""The processing thread's side of the sinks: what each commit must carry to them.

Lines a processor sends to a sink (by emitting the sink's name as its tag) wait here
with the chunk that produced them, and go out with the commit that moves that chunk's
checkpoint, in this order:

1. `file` sinks are outbox files (written as the chunk is, synced with the outbox);
2. `stdout` lines are written and flushed (at-least-once: a crash before the commit
   writes them again);
3. each `sqlite` sink's rows and position commit in its own database;
4. the state database's transaction holds the checkpoints, the sqlite sinks' positions
   and the `http` sinks' lines (their spool); the senders take them from there.

When the reader is dropped (a fault of the world), everything waiting is dropped with
it: the lines will be routed again from the checkpoints. Opening reconciles each sqlite
sink with the position the state database committed.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Callable
from itertools import repeat
from pathlib import Path
from typing import TextIO

import sqlite_utils

from processors.options import Settings
from store.checkpoints import CheckpointStore, write_sink_positions
from store.errors import ConfigError
from store.outbox import Outbox
from store.records import SinkLines
from store.sinkboard import SinkBoard
from store.sinkconf import SinkSpec, render_path
from store.sinkdb import Row, SinkDatabase
from watcher.faults import SharedFault, reason_of

log = logging.getLogger("inboxd.watcher")


class SinkWriter:
    """Holds the sinks' lines until the commit that covers them; processing thread only."""

    def __init__(
        self,
        specs: tuple[SinkSpec, ...],
        outbox: Outbox,
        board: SinkBoard,
        *,
        state_dir: str,
        nudge: Callable[[], None] | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self.specs = {s.name: s for s in specs}
        self.outbox = outbox
        self.board = board
        self.nudge = nudge
        self.stdout = stdout
        self.databases = {
            s.name: SinkDatabase(s.name, Path(state_dir) / s.path, s.table)
            for s in specs
            if s.type == "sqlite"
        }
        self._rows: dict[str, list[Row]] = {n: [] for n, s in self.specs.items()
                                           if s.type in ("sqlite", "http")}  # fmt: skip
        self._text: list[str] = []
        self._counts: dict[str, int] = {}
        self._positions: dict[str, int] = {}

    def open(self, store: CheckpointStore) -> None:
        """Reconcile each sqlite sink with the state database (before any write)."""
        if not self.databases:
            return
        committed = store.sink_positions()
        agreed: dict[str, int] = {}
        for name, db in self.databases.items():
            try:
                position, deleted = db.reconcile(committed.get(name))
            except (sqlite3.Error, OSError, ConfigError) as exc:
                raise self._fault(name, exc) from exc
            if deleted:
                log.warning(
                    "sqlite sink cut back to its committed position",
                    extra={"event": "sink_recovered", "sink": name, "rows": deleted,
                           "position": position},
                )  # fmt: skip
            if committed.get(name) != position:
                agreed[name] = position
        if agreed:
            store.set_sink_positions(agreed)

    def reopened(self) -> None:
        """The engine opened again after a fault: the file, sqlite and stdout sinks are
        taken to work until a write says otherwise."""
        for name, spec in self.specs.items():
            if spec.type != "http":
                self.board.recovered(name)

    def add(self, outbox_rel: str, file: str, lines: SinkLines) -> int:
        """Lines of one routed chunk of input `outbox_rel` (shown as `file`); returns
        about how many bytes wait for the commit (they count towards its size)."""
        size = 0
        for name, (numbers, texts) in lines.items():
            size += sum(map(len, texts)) + len(texts)
            spec = self.specs[name]
            self._counts[name] = self._counts.get(name, 0) + len(texts)
            if spec.type == "file":
                self._append(spec, outbox_rel, texts)
            elif spec.type == "stdout":
                self._text.extend(texts)
            else:
                self._rows[name].extend(zip(repeat(file), numbers, texts, strict=False))
        return size

    def _append(self, spec: SinkSpec, outbox_rel: str, lines: list[str]) -> None:
        rel = render_path(spec.path, outbox_rel, spec.name)
        data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
        try:
            self.outbox.append(rel, data)
        except UnicodeEncodeError:
            self.outbox.append(rel, ("\n".join(lines) + "\n").encode("utf-8", "replace"))
        except OSError as exc:
            raise self._fault(spec.name, exc, f"file {rel}") from exc

    def before_commit(self) -> None:
        """stdout and the sqlite sinks, after the outbox sync and before the checkpoint."""
        if self._text and self.stdout is not None:
            try:
                self.stdout.write("\n".join(self._text) + "\n")
                self.stdout.flush()
            except (OSError, ValueError) as exc:
                names = [n for n, s in self.specs.items() if s.type == "stdout"]
                raise self._fault(names[0], exc) from exc
        self._text = []
        for name, db in self.databases.items():
            rows = self._rows[name]
            if not rows:
                continue
            try:
                self._positions[name] = db.write(rows)
            except (sqlite3.Error, OSError) as exc:
                raise self._fault(name, exc) from exc
            rows.clear()

    def in_commit(self, db: sqlite_utils.Database) -> None:
        """Inside the state database's transaction: positions and the http spool."""
        if self._positions:
            write_sink_positions(db, self._positions)
        for name, rows in self._rows.items():
            if rows and self.specs[name].type == "http":
                from store.spool import spool_lines

                spool_lines(db.conn, name, rows)

    def committed(self) -> None:
        """The commit is durable: count what was delivered, wake the http senders."""
        spooled = False
        for name, spec in self.specs.items():
            n = self._counts.get(name, 0)
            if spec.type == "http":
                if n:
                    self.board.add_pending(name, n)
                    spooled = True
            elif n:
                self.board.delivered(name, n)
            else:  # a commit went through: a fault that stopped this sink is gone
                self.board.recovered(name)
        for rows in self._rows.values():
            rows.clear()
        self._counts.clear()
        self._positions.clear()
        if spooled and self.nudge is not None:
            self.nudge()

    def close(self) -> None:
        for db in self.databases.values():
            db.close()

    def _fault(self, name: str, exc: BaseException, what: str = "") -> SharedFault:
        reason = reason_of(exc, f"sink {name}" + (f" {what}" if what else ""))
        self.board.failed(name, reason)
        return SharedFault("sinks", reason)


def sink_writer(
    settings: Settings, outbox: Outbox, board: SinkBoard, nudge: Callable[[], None] | None
) -> SinkWriter | None:
    """The reader's SinkWriter, or None when the config names no sink."""
    if not settings.sinks:
        return None
    return SinkWriter(settings.sinks, outbox, board, state_dir=str(settings.state_dir),
                      nudge=nudge, stdout=sys.stdout)  # fmt: skip
