"""The spool of the http and nats sinks: lines waiting in `inboxd.db` until delivered.

The processing thread adds a sink's lines inside the transaction that commits the
checkpoints covering them (`spool_lines`), so a line is either spooled and past its
checkpoint or neither. Each sink's sender thread then takes the oldest lines as a batch,
records the batch (`take_batch`) before its first POST, and deletes it once the receiver
acknowledged it (`ack_batch`). The recorded batch is what makes a retry, or the first
POST after a crash, carry exactly the same lines under the same key.

Thread-safety: plain functions over the caller's connection; each connection belongs to
one thread. Ids are AUTOINCREMENT and SQLite has one writer at a time, so rows committed
later always have higher ids than a batch already taken: a batch's id range never gains
a row.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Sequence
from typing import NamedTuple

import sqlite_utils

from store.db import transaction
from store.paths import insert_storable, storable
from store.records import DeadLetter
from store.statemark import INSTANCE_KEY

_INSERT = "INSERT INTO spool (sink, file, line_no, line) VALUES (?, ?, ?, ?)"

SpoolRow = tuple[int, str | None, int | None, str]  # id, file, line_no, line


class SpoolBatch(NamedTuple):
    """The lines a sender is delivering: this sink's rows with ids first_id..last_id."""

    sink: str
    first_id: int
    last_id: int
    key: str
    created: float = 0.0  # when it was recorded, before its first attempt (wall clock)


def _raw(conn: sqlite_utils.Database | sqlite3.Connection) -> sqlite3.Connection:
    return conn.conn if isinstance(conn, sqlite_utils.Database) else conn


def spool_lines(
    conn: sqlite_utils.Database | sqlite3.Connection,
    sink: str,
    rows: Sequence[tuple[str | None, int | None, str]],
) -> int:
    """Add `rows` (file, line_no, line) to `sink`'s spool; returns how many.

    Runs inside the caller's transaction and neither begins nor commits one. Text that
    SQLite cannot encode (a lone surrogate a processor emitted) is written with the odd
    characters escaped, so one such line never stops the engine; every row still goes
    in, once, in order.
    """
    c = _raw(conn)
    data = [(sink, f, n, line) for f, n, line in rows]
    c.execute("SAVEPOINT spool")
    try:
        try:
            c.executemany(_INSERT, data)
        except UnicodeEncodeError:
            # executemany stops at the bad row with the rows before it inserted.
            c.execute("ROLLBACK TO spool")
            c.executemany(_INSERT, [tuple(storable(v) for v in row) for row in data])
    except BaseException:
        c.execute("ROLLBACK TO spool")
        c.execute("RELEASE spool")
        raise
    c.execute("RELEASE spool")
    return len(data)


def pending_count(db: sqlite_utils.Database, sink: str) -> int:
    """How many lines `sink`'s spool holds (its index makes this a short scan)."""
    row = db.conn.execute("SELECT COUNT(*) FROM spool WHERE sink = ?", (sink,)).fetchone()
    return int(row[0])


def instance_id(db: sqlite_utils.Database) -> str:
    """The state database's identity (the `meta` row start-up writes), made if missing."""
    query = "SELECT value FROM meta WHERE key = ?"
    row = db.conn.execute(query, (INSTANCE_KEY,)).fetchone()
    if row is None:
        import uuid

        with transaction(db):
            db.conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                (INSTANCE_KEY, uuid.uuid4().hex),
            )
        row = db.conn.execute(query, (INSTANCE_KEY,)).fetchone()
    return str(row[0])


def batch_key(instance: str, sink: str, first_id: int, last_id: int) -> str:
    """The Idempotency-Key of a batch: the same lines of the same database, same key."""
    text = f"inboxd\0{instance}\0{sink}\0{first_id}\0{last_id}"
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()


def load_batch(db: sqlite_utils.Database, sink: str) -> SpoolBatch | None:
    """The batch recorded for `sink`, if one is waiting for its acknowledgement."""
    row = db.conn.execute(
        "SELECT first_id, last_id, key, created FROM spool_batches WHERE sink = ?", (sink,)
    ).fetchone()
    if row is None:
        return None
    return SpoolBatch(sink, int(row[0]), int(row[1]), str(row[2]), float(row[3] or 0.0))


def batch_rows(db: sqlite_utils.Database, batch: SpoolBatch) -> list[SpoolRow]:
    """The lines of a batch, in id order."""
    cur = db.conn.execute(
        "SELECT id, file, line_no, line FROM spool WHERE sink = ? AND id BETWEEN ? AND ?"
        " ORDER BY id",
        (batch.sink, batch.first_id, batch.last_id),
    )
    rows: list[SpoolRow] = cur.fetchall()
    return rows


def take_batch(
    db: sqlite_utils.Database, sink: str, limit: int, instance: str
) -> tuple[SpoolBatch, list[SpoolRow]] | None:
    """Record the next batch (the `limit` oldest lines) and return it with its lines.

    One committed transaction, so the batch is on disk before anything is sent. Returns
    the batch already recorded if there is one, and None when the spool is empty.
    """
    with transaction(db):
        recorded = load_batch(db, sink)
        if recorded is not None:
            return recorded, batch_rows(db, recorded)
        cur = db.conn.execute(
            "SELECT id, file, line_no, line FROM spool WHERE sink = ? ORDER BY id LIMIT ?",
            (sink, limit),
        )
        rows: list[SpoolRow] = cur.fetchall()
        if not rows:
            return None
        first, last = rows[0][0], rows[-1][0]
        batch = SpoolBatch(sink, first, last, batch_key(instance, sink, first, last), time.time())
        db.conn.execute(
            "INSERT INTO spool_batches (sink, first_id, last_id, key, created)"
            " VALUES (?, ?, ?, ?, ?)",
            (sink, first, last, batch.key, batch.created),
        )
    return batch, rows


def ack_batch(db: sqlite_utils.Database, batch: SpoolBatch, dead: Sequence[DeadLetter] = ()) -> int:
    """The receiver took `batch`: delete its lines and its record; returns lines deleted.

    `dead` are the batch's lines the receiver can never take (a line over a server's
    size limit): they go to the dead-letter table in the same transaction.
    """
    with transaction(db):
        if dead:
            insert_storable(
                db,
                "INSERT INTO deadletter (ts, file, line_no, tag, processor, message, line) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [tuple(d) for d in dead],
            )
        cur = db.conn.execute(
            "DELETE FROM spool WHERE sink = ? AND id BETWEEN ? AND ?",
            (batch.sink, batch.first_id, batch.last_id),
        )
        db.conn.execute("DELETE FROM spool_batches WHERE sink = ?", (batch.sink,))
    return int(cur.rowcount)


def forget_batch(db: sqlite_utils.Database, sink: str) -> None:
    """Drop `sink`'s batch record (its lines are gone: nothing is left to send)."""
    with transaction(db):
        db.conn.execute("DELETE FROM spool_batches WHERE sink = ?", (sink,))
