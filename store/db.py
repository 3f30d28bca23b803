"""The SQLite file `<state-dir>/inboxd.db`: connections and the documented schema.

Each connection belongs to the thread that opened it (DESIGN: threads). The database is
in WAL mode so that readers (the API) never block the writers (the processing thread
for checkpoints and dead letters, the flusher for metrics, errors and traces).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

BUSY_TIMEOUT_MS = 10_000
# SQLite result codes (primary, the low byte of the extended code) that mean the
# database as a whole cannot be written now, not that a statement is wrong.
_SHARED_FAULT_CODES = frozenset({5, 6, 8, 10, 13, 14})  # BUSY LOCKED READONLY IOERR FULL CANTOPEN

SCHEMA = """
-- Lines for the spooled sinks (http, nats), committed with the checkpoints that cover
-- them; a sink's sender deletes them once the receiver acknowledged their batch.
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT, sink TEXT NOT NULL,
    file TEXT, line_no INTEGER, line TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_spool_sink ON spool (sink, id);
-- The batch a sender is delivering: recorded before its first POST, so that after any
-- crash or retry the same lines go again under the same Idempotency-Key.
CREATE TABLE IF NOT EXISTS spool_batches (
    sink TEXT PRIMARY KEY, first_id INTEGER NOT NULL, last_id INTEGER NOT NULL,
    key TEXT NOT NULL, created REAL NOT NULL
);
-- Per sqlite sink, the last row id its database holds under a committed checkpoint.
CREATE TABLE IF NOT EXISTS sink_positions (
    sink TEXT PRIMARY KEY, last_id INTEGER NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    ts REAL NOT NULL, processor TEXT NOT NULL,
    count INTEGER NOT NULL, time REAL NOT NULL, errors INTEGER NOT NULL, retries INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_metrics_ts ON metrics (ts);
CREATE INDEX IF NOT EXISTS idx_metrics_processor_ts ON metrics (processor, ts);

CREATE TABLE IF NOT EXISTS errors (
    ts REAL NOT NULL, processor TEXT NOT NULL, message TEXT NOT NULL,
    file TEXT, line_no INTEGER, line TEXT, attempt INTEGER, traceback TEXT
);
CREATE INDEX IF NOT EXISTS idx_errors_ts ON errors (ts);
CREATE INDEX IF NOT EXISTS idx_errors_processor_ts ON errors (processor, ts);

CREATE TABLE IF NOT EXISTS deadletter (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, file TEXT, line_no INTEGER,
    tag TEXT NOT NULL, processor TEXT NOT NULL, message TEXT NOT NULL, line TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_deadletter_ts ON deadletter (ts);
CREATE INDEX IF NOT EXISTS idx_deadletter_file ON deadletter (file);

CREATE TABLE IF NOT EXISTS traces (
    ts REAL NOT NULL, path TEXT NOT NULL, file TEXT, line_no INTEGER, line TEXT
);
CREATE INDEX IF NOT EXISTS idx_traces_ts ON traces (ts);

CREATE TABLE IF NOT EXISTS checkpoints (
    dev INTEGER NOT NULL, ino INTEGER NOT NULL,
    fp_len INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    path TEXT NOT NULL, offset INTEGER NOT NULL, lines INTEGER NOT NULL,
    outbox TEXT NOT NULL, first_seen REAL NOT NULL, updated REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'active', tail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (dev, ino)
);

CREATE TABLE IF NOT EXISTS outbox (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, updated REAL NOT NULL,
    dev INTEGER, ino INTEGER
);

CREATE TABLE IF NOT EXISTS copies (
    fp_len INTEGER NOT NULL, fingerprint TEXT NOT NULL, offset INTEGER NOT NULL,
    lines INTEGER NOT NULL, tail TEXT NOT NULL, outbox TEXT NOT NULL, path TEXT NOT NULL,
    ts REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Columns added after a table was first released: (table, column, declaration). Older
# databases get them at start-up.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("checkpoints", "tail", "TEXT NOT NULL DEFAULT ''"),
    ("outbox", "dev", "INTEGER"),
    ("outbox", "ino", "INTEGER"),
    ("errors", "attempt", "INTEGER"),
    ("errors", "traceback", "TEXT"),
    ("traces", "line", "TEXT"),
)


def connect(path: Path, *, readonly: bool = False) -> sqlite_utils.Database:
    """Open the database for the calling thread only.

    Writers get WAL with synchronous=NORMAL: the outbox is fsynced before a checkpoint
    commits, so a commit lost to power failure only rolls both back together.
    """
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=True, isolation_level=None
        )
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=True, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    # Plugins serve interactive sqlite-utils use; loading them scans every installed
    # package, a tenth of a second at each start.
    return sqlite_utils.Database(conn, execute_plugins=False)


def ensure_schema(db: sqlite_utils.Database) -> None:
    """Create every table and index, and add the columns older versions lacked."""
    db.conn.executescript(SCHEMA)
    for table, column, decl in ADDED_COLUMNS:
        have = {row[1] for row in db.conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            db.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")


def is_shared_fault(exc: BaseException) -> bool:
    """Whether a database error means "cannot write now" (locked, full, read-only, I/O).

    Such faults pause the engine and are retried; anything else is a bug.
    """
    if not isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _SHARED_FAULT_CODES
    text = str(exc).lower()
    return any(w in text for w in ("locked", "busy", "full", "readonly", "read-only", "i/o"))


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One explicit write transaction (connections run in autocommit mode otherwise).

    The error that broke the body (or the COMMIT) is the one raised; a failed ROLLBACK
    never hides it, and a failed COMMIT never leaves the transaction open.
    """
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
