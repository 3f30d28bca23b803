"""Checkpoints: where each input file was read to, saved with the outbox sizes.

Owned by the processing thread (its own SQLite connection). One commit holds the new
offsets, the outbox sizes that match them and the dead letters of the same lines, so
either all of a batch's effects are durable or none are.

File names are stored losslessly (store/paths.py): a name that is not UTF-8 is kept as
the BLOB of its bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import sqlite_utils

from store.db import connect, ensure_schema, transaction
from store.paths import from_db, insert_storable, to_db
from store.records import DeadLetter

# How long the checkpoint of a truncated file is kept for a copy of it to match
# (logrotate's copytruncate makes the copy just before it truncates).
COPY_MATCH_S = 3600.0


@dataclass(slots=True)
class TrackedFile:
    """The reading state of one input file (mutable: owned by the processing thread)."""

    dev: int
    ino: int
    fp_len: int
    fingerprint: str
    path: str  # relative to the inbox, '/'-separated
    offset: int  # first byte not yet consumed
    lines: int  # lines consumed so far (the next line is number lines + 1)
    outbox: str  # relative path of the outbox file its lines go to
    first_seen: float
    updated: float
    state: str = "active"  # active | skipping | gone | error | waiting
    tail: str = ""  # fingerprint of the bytes just before `offset`
    size: int = 0
    changed_at: float = 0.0  # monotonic time the size last changed
    mtime_ns: int = 0  # modification time at the last read

    @property
    def key(self) -> tuple[int, int]:
        return (self.dev, self.ino)


class CopySource(NamedTuple):
    """The checkpoint a file had when it was truncated: what a copy of it resumes from."""

    fp_len: int
    fingerprint: str
    offset: int
    lines: int
    tail: str
    outbox: str
    path: str
    ts: float


_COLUMNS = (
    "dev", "ino", "fp_len", "fingerprint", "path", "offset", "lines",
    "outbox", "first_seen", "updated", "state", "tail",
)  # fmt: skip
_NAMES = ("path", "outbox")


def _row(f: TrackedFile) -> tuple[Any, ...]:
    return tuple(to_db(getattr(f, c)) if c in _NAMES else getattr(f, c) for c in _COLUMNS)


class OutboxState(NamedTuple):
    """Committed outbox files: size, and (dev, ino) when known."""

    sizes: dict[str, int]
    ids: dict[str, tuple[int, int]]


class CheckpointStore:
    """Loads and commits checkpoints; one instance per thread that owns a connection."""

    def __init__(self, db_path: Path) -> None:
        self.db: sqlite_utils.Database = connect(db_path)
        ensure_schema(self.db)

    def load(self) -> tuple[dict[tuple[int, int], TrackedFile], OutboxState]:
        files: dict[tuple[int, int], TrackedFile] = {}
        for row in self.db.execute(f"SELECT {', '.join(_COLUMNS)} FROM checkpoints").fetchall():
            values = dict(zip(_COLUMNS, row, strict=True))
            for name in _NAMES:
                values[name] = from_db(values[name])
            f = TrackedFile(**values)
            files[f.key] = f
        state = OutboxState({}, {})
        for p, size, dev, ino in self.db.execute("SELECT path, size, dev, ino FROM outbox"):
            rel = from_db(p)
            state.sizes[rel] = size
            if dev is not None and ino is not None:
                state.ids[rel] = (dev, ino)
        return files, state

    def load_copies(self, now: float) -> list[CopySource]:
        rows = self.db.execute(
            f"SELECT {', '.join(CopySource._fields)} FROM copies WHERE ts > ?",
            [now - COPY_MATCH_S],
        ).fetchall()
        return [
            CopySource(r[0], r[1], r[2], r[3], r[4], from_db(r[5]), from_db(r[6]), r[7])
            for r in rows
        ]

    def commit(
        self,
        files: Iterable[TrackedFile],
        outbox: dict[str, tuple[int, int, int]],
        deadletters: list[DeadLetter],
        *,
        now: float,
        forget: Iterable[tuple[int, int]] = (),
        copies: Iterable[CopySource] = (),
        extra: Callable[[sqlite_utils.Database], None] | None = None,
    ) -> None:
        """One transaction: checkpoints, outbox (size, dev, ino), dead letters, and what
        `extra` writes (the sinks' spooled lines and positions)."""
        with transaction(self.db) as db:
            if extra is not None:
                extra(db)
            rows = [_row(f) for f in files]
            if rows:
                db.conn.executemany(
                    f"INSERT OR REPLACE INTO checkpoints ({', '.join(_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_COLUMNS))})",
                    rows,
                )
            if outbox:
                db.conn.executemany(
                    "INSERT OR REPLACE INTO outbox (path, size, updated, dev, ino) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(to_db(p), s, now, d, i) for p, (s, d, i) in outbox.items()],
                )
            if deadletters:
                sql = (
                    "INSERT INTO deadletter (ts, file, line_no, tag, processor, message, line) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)"
                )
                insert_storable(db, sql, [tuple(d) for d in deadletters])
            for dev, ino in forget:
                db.execute("DELETE FROM checkpoints WHERE dev = ? AND ino = ?", [dev, ino])
            new_copies = [(*c[:5], to_db(c.outbox), to_db(c.path), c.ts) for c in copies]
            if new_copies:
                db.execute("DELETE FROM copies WHERE ts <= ?", [now - COPY_MATCH_S])
                db.conn.executemany(
                    f"INSERT INTO copies ({', '.join(CopySource._fields)}) "
                    f"VALUES ({', '.join('?' * len(CopySource._fields))})",
                    new_copies,
                )

    def sink_positions(self) -> dict[str, int]:
        return {
            str(k): int(v) for k, v in self.db.execute("SELECT sink, last_id FROM sink_positions")
        }

    def set_sink_positions(self, positions: dict[str, int]) -> None:
        with transaction(self.db) as db:
            write_sink_positions(db, positions)

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with transaction(self.db) as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])

    def close(self) -> None:
        self.db.conn.close()


def write_sink_positions(db: sqlite_utils.Database, positions: dict[str, int]) -> None:
    """Inside the caller's transaction: the last row id each sqlite sink holds."""
    now = time.time()
    db.conn.executemany(
        "INSERT OR REPLACE INTO sink_positions (sink, last_id, updated) VALUES (?, ?, ?)",
        [(name, last, now) for name, last in positions.items()],
    )
