"""Checkpoints: where each input file was read to, saved with the outbox sizes.

Owned by the processing thread (its own SQLite connection). One commit holds the new
offsets, the outbox sizes that match them and the dead letters of the same lines, so
either all of a batch's effects are durable or none are.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlite_utils

from store.db import connect, ensure_schema, transaction
from store.records import DeadLetter
from watcher.tailer import TrackedFile

_COLUMNS = (
    "dev", "ino", "fp_len", "fingerprint", "path", "offset", "lines",
    "outbox", "first_seen", "updated", "state",
)  # fmt: skip


def _row(f: TrackedFile) -> dict[str, Any]:
    return {c: getattr(f, c) for c in _COLUMNS}


class CheckpointStore:
    """Loads and commits checkpoints; one instance per thread that owns a connection."""

    def __init__(self, db_path: Path) -> None:
        self.db: sqlite_utils.Database = connect(db_path)
        ensure_schema(self.db)

    def load(self) -> tuple[dict[tuple[int, int], TrackedFile], dict[str, int]]:
        files: dict[tuple[int, int], TrackedFile] = {}
        for row in self.db.execute(f"SELECT {', '.join(_COLUMNS)} FROM checkpoints").fetchall():
            f = TrackedFile(**dict(zip(_COLUMNS, row, strict=True)))
            files[f.key] = f
        sizes = {p: s for p, s in self.db.execute("SELECT path, size FROM outbox").fetchall()}
        return files, sizes

    def commit(
        self,
        files: Iterable[TrackedFile],
        outbox_sizes: dict[str, int],
        deadletters: list[DeadLetter],
        *,
        now: float,
        forget: Iterable[tuple[int, int]] = (),
    ) -> None:
        """One transaction: checkpoints, outbox sizes and dead letters together."""
        with transaction(self.db) as db:
            rows = [_row(f) for f in files]
            if rows:
                db.conn.executemany(
                    f"INSERT OR REPLACE INTO checkpoints ({', '.join(_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_COLUMNS))})",
                    [tuple(r[c] for c in _COLUMNS) for r in rows],
                )
            if outbox_sizes:
                db.conn.executemany(
                    "INSERT OR REPLACE INTO outbox (path, size, updated) VALUES (?, ?, ?)",
                    [(p, s, now) for p, s in outbox_sizes.items()],
                )
            if deadletters:
                db.conn.executemany(
                    "INSERT INTO deadletter (ts, file, line_no, tag, processor, message, line) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    deadletters,
                )
            for dev, ino in forget:
                db.execute("DELETE FROM checkpoints WHERE dev = ? AND ino = ?", [dev, ino])

    def close(self) -> None:
        self.db.conn.close()
