"""The `sqlite` sink: a table in its own database file, written exactly once.

Each commit writes the sink's rows and its position (the last row id) in one
transaction of the sink's database, then the state database records that position with
the checkpoints that cover the rows. Start-up reconciles the two: rows past the
position the state database knows were written for lines that will be read again, and
are deleted. Row ids come from AUTOINCREMENT, so they only grow, whatever a consumer
deletes.

Used by the processing thread only (the connection is its own).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import sqlite_utils

from sinks.base import Sink, SinkContext, SinkSpec
from sinks.config import relative
from store.checkpoints import CheckpointStore, write_sink_positions
from store.db import connect
from store.errors import ConfigError

log = logging.getLogger("inboxd.sinks")

POSITION_TABLE = "inboxd_position"
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
COLUMNS = ("ts", "file", "line_no", "line")
Row = tuple[str, int | None, str]  # file, line number, line


class SinkDatabase:
    """One sqlite sink's database file and table."""

    def __init__(self, name: str, path: Path, table: str) -> None:
        self.name = name
        self.path = path
        self.table = table
        self.conn: sqlite3.Connection | None = None

    def open(self) -> sqlite3.Connection:
        if self.conn is None:
            conn = connect(self.path).conn  # WAL, busy timeout, as the state database
            try:
                self._ensure(conn)
            except BaseException:
                conn.close()
                raise
            self.conn = conn
        return self.conn

    def _ensure(self, conn: sqlite3.Connection) -> None:
        t = self.table
        conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{t}" (id INTEGER PRIMARY KEY AUTOINCREMENT, '
            "ts REAL NOT NULL, file TEXT, line_no INTEGER, line TEXT NOT NULL)"
        )
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {POSITION_TABLE} "
            "(tbl TEXT PRIMARY KEY, last_id INTEGER NOT NULL, updated REAL NOT NULL)"
        )
        have = {row[1] for row in conn.execute(f'PRAGMA table_info("{t}")')}
        missing = [c for c in ("id", *COLUMNS) if c not in have]
        if missing:
            raise ConfigError(
                f"sqlite sink {self.name}: table {t!r} in {self.path} exists without "
                f"column {missing[0]!r}; name another table"
            )

    def last_id(self) -> int:
        """The highest id the table ever gave (AUTOINCREMENT's sequence)."""
        row = (
            self.open()
            .execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (self.table,))
            .fetchone()
        )
        return int(row[0]) if row else 0

    def position(self) -> int | None:
        row = (
            self.open()
            .execute(f"SELECT last_id FROM {POSITION_TABLE} WHERE tbl = ?", (self.table,))
            .fetchone()
        )
        return None if row is None else int(row[0])

    def write(self, rows: Sequence[Row]) -> int:
        """Insert `rows` and the new position in one transaction; returns the position."""
        conn = self.open()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            try:
                conn.executemany(
                    f'INSERT INTO "{self.table}" (ts, file, line_no, line) VALUES (?, ?, ?, ?)',
                    [(now, f, n, line) for f, n, line in rows],
                )
            except UnicodeEncodeError:
                # A processor emitted a lone surrogate: store "?" rather than stop here.
                conn.executemany(
                    f'INSERT INTO "{self.table}" (ts, file, line_no, line) VALUES (?, ?, ?, ?)',
                    [(now, _text(f), n, _text(line)) for f, n, line in rows],
                )
            last = self.last_id()
            self._set_position(conn, last, now)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return last

    def reconcile(self, committed: int | None) -> tuple[int, int]:
        """Agree with the state database's position; returns (position, rows deleted).

        `committed` None means the state database has no position for this sink yet
        (first start, or a new state database): what the table holds is kept.
        A table whose own position is behind `committed` was replaced or restored from an
        older copy: its current end becomes the position.
        """
        conn = self.open()
        own = self.position()
        last = self.last_id()
        if committed is None or own is None or own < committed or last < committed:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._set_position(conn, last, time.time())
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return last, 0
        if own == committed:
            return committed, 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.execute(f'DELETE FROM "{self.table}" WHERE id > ?', (committed,))
            self._set_position(conn, committed, time.time())
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return committed, cur.rowcount

    def _set_position(self, conn: sqlite3.Connection, last: int, now: float) -> None:
        conn.execute(
            f"INSERT OR REPLACE INTO {POSITION_TABLE} (tbl, last_id, updated) VALUES (?, ?, ?)",
            (self.table, last, now),
        )

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    return value.encode("utf-8", "replace").decode("utf-8")


@dataclass(frozen=True, slots=True)
class SqliteSpec(SinkSpec):
    KEYS: ClassVar[tuple[str, ...]] = ("type", "path", "table")

    path: str = ""  # relative to the state folder
    table: str = "lines"

    @classmethod
    def parse(cls, name: str, table: dict[str, Any], where: str) -> SqliteSpec:
        path = relative(table.get("path", f"{name}.db"), f"{where} path")
        parts = PurePosixPath(path).parts
        if parts[0] in ("logs", "inflight") or parts[0].startswith("inboxd."):
            raise ConfigError(f"{where} path: {path!r} is inboxd's own; name another file")
        table_name = table.get("table", "lines")
        if not isinstance(table_name, str) or not _TABLE.match(table_name):
            raise ConfigError(f"{where} table: expected an SQL name like lines, got {table_name!r}")
        if table_name.startswith(("sqlite_", "inboxd_")):
            raise ConfigError(f"{where} table: {table_name!r} is a reserved name")
        return cls(name, "sqlite", path=path, table=table_name)

    def describe(self, outbox: str, state_dir: str) -> str:
        return f"sqlite sink {state_dir}/{self.path} table {self.table} (exactly-once)"

    def check(self, state_dir: Path, *, strict: bool) -> str | None:
        """The database opens and its table fits (ConfigError); `check` makes no file."""
        if not strict:
            return None
        db = SinkDatabase(self.name, state_dir / self.path, self.table)
        try:
            db.open()
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(
                f"[sinks.{self.name}] path: cannot open {db.path}: {type(exc).__name__}: {exc}"
            ) from None
        finally:
            db.close()
        return None

    def build(self, ctx: SinkContext) -> SqliteSink:
        return SqliteSink(self, ctx)


class SqliteSink(Sink):
    """Rows committed in the sink's database before the checkpoints, with the position
    the state database then records in the same transaction as the checkpoints."""

    def __init__(self, spec: SqliteSpec, ctx: SinkContext) -> None:
        super().__init__(spec, ctx)
        self.db = SinkDatabase(spec.name, ctx.state_dir / spec.path, spec.table)
        self._rows: list[Row] = []
        self._position: int | None = None

    def open(self, store: CheckpointStore) -> dict[str, int]:
        committed = store.sink_positions().get(self.name)
        try:
            position, deleted = self.db.reconcile(committed)
        except (sqlite3.Error, OSError, ConfigError) as exc:
            raise self.fault(exc) from exc
        if deleted:
            log.warning(
                "sqlite sink cut back to its committed position",
                extra={"event": "sink_recovered", "sink": self.name, "rows": deleted,
                       "position": position},
            )  # fmt: skip
        return {} if committed == position else {self.name: position}

    def add(self, outbox_rel: str, file: str, numbers: list[int], texts: list[str]) -> None:
        self.count += len(texts)
        self._rows.extend(zip([file] * len(texts), numbers, texts, strict=False))

    def before_commit(self) -> None:
        if not self._rows:
            return
        try:
            self._position = self.db.write(self._rows)
        except (sqlite3.Error, OSError) as exc:
            raise self.fault(exc) from exc
        self._rows = []

    def in_commit(self, db: sqlite_utils.Database) -> None:
        if self._position is not None:
            write_sink_positions(db, {self.name: self._position})

    def committed(self) -> bool:
        self._position = None
        return super().committed()

    def close(self) -> None:
        self.db.close()
