"""Read-only queries on the history tables of `inboxd.db` for the API.

Thread-safety: each calling thread gets its own read-only connection (SQLite connections
belong to one thread), kept in a threading.local. The database in WAL mode lets these
readers run beside the writers without blocking them. A database or table that does not
exist yet reads as empty, so the API works from the daemon's first second.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from store import filematch
from store.db import connect
from store.errors import InboxdError

_MISSING_MARKERS = ("no such table", "unable to open database", "no such column")


class HistoryUnavailable(InboxdError):
    """The database exists but cannot be read now (locked, corrupt, I/O error)."""


@dataclass(frozen=True)
class TraceSearch:
    """What /traces asks for: filters, a time range, and how many of the newest."""

    limit: int = 1000
    tags: tuple[str, ...] = ()  # any of them in the path
    file: str | None = None
    q: str | None = None
    since: float | None = None
    until: float | None = None


def _like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class HistoryReader:
    """Queries over metrics, errors, dead letters and checkpoints, newest last."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._local = threading.local()

    def _db(self) -> sqlite_utils.Database | None:
        db: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if db is None:
            if not self.db_path.is_file():
                return None
            db = connect(self.db_path, readonly=True)
            filematch.register(db.conn)
            self._local.db = db
        return db

    def close(self) -> None:
        """Close the calling thread's connection, if it has one."""
        db: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if db is not None:
            self._local.db = None
            db.conn.close()

    def _query(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Rows as dicts; [] while the database or the table does not exist."""
        try:
            db = self._db()
            if db is None:
                return []
            cursor = db.conn.execute(sql, tuple(params))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        except sqlite3.OperationalError as exc:
            if any(marker in str(exc) for marker in _MISSING_MARKERS):
                self.close()
                return []
            raise HistoryUnavailable(f"history cannot be read: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            self.close()
            raise HistoryUnavailable(f"history cannot be read: {exc}") from exc

    def metrics(
        self,
        since: float,
        until: float,
        processor: str | None = None,
        step: float | None = None,
        *,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Rows of `metrics` with since <= ts <= until, oldest first.

        With `step` (seconds), rows are summed per processor per bucket; a bucket's `ts`
        is its start, a multiple of `step` since the epoch. With `limit`, only the newest
        `limit` rows or buckets are returned (still oldest first).
        """
        where = ["ts >= ?", "ts <= ?"]
        params: list[Any] = [since, until]
        if processor is not None:
            where.append("processor = ?")
            params.append(processor)
        cond = " AND ".join(where)
        if step is None:
            sql = (
                "SELECT ts, processor, count, time, errors, retries FROM metrics "
                f"WHERE {cond} ORDER BY ts DESC, processor DESC"
            )
        else:
            sql = (
                "SELECT CAST(ts / ? AS INTEGER) * ? AS ts, processor, "
                "SUM(count) AS count, SUM(time) AS time, SUM(errors) AS errors, "
                "SUM(retries) AS retries "
                f"FROM metrics WHERE {cond} GROUP BY 1, processor "
                "ORDER BY 1 DESC, processor DESC"
            )
            params = [step, step, *params]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._query(sql, params)
        rows.reverse()
        for row in rows:
            row["ts"] = float(row["ts"])
            row["time"] = float(row["time"])
        return rows

    def errors(
        self,
        since: float | None = None,
        processor: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The newest `limit` rows of `errors`, newest last, shaped like /errors entries."""
        where: list[str] = []
        params: list[Any] = []
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        if processor is not None:
            where.append("processor = ?")
            params.append(processor)
        cond = f"WHERE {' AND '.join(where)}" if where else ""
        return self._newest_last(
            "SELECT processor, message, ts AS time, file, line_no, line, attempt, traceback "
            "FROM errors "
            f"{cond} ORDER BY ts DESC, rowid DESC",
            params,
            limit,
        )

    def deadletters(self, limit: int = 100, file: str | None = None) -> list[dict[str, Any]]:
        """The newest `limit` dead letters, newest last; `file` is a glob (store/filematch)."""
        cond, params = filematch.sql_condition(file) if file is not None else ("1", [])
        return self._newest_last(
            "SELECT id, ts, file, line_no, tag, processor, message, line FROM deadletter "
            f"WHERE {cond} ORDER BY ts DESC, id DESC",
            params,
            limit,
        )

    def traces(self, search: TraceSearch, up_to: float | None = None) -> list[dict[str, Any]]:
        """Stored traces matching `search` (and not newer than `up_to`), newest last.

        Shaped like /traces entries. Each of `tags` matches one element of the path
        exactly (any of them will do), `file` is a glob (store/filematch) and `q` a
        substring (case-insensitive for ASCII, as SQLite's LIKE is).
        """
        where: list[str] = ["1"]
        params: list[Any] = []
        if search.file is not None:
            cond, values = filematch.sql_condition(search.file)
            where.append(cond)
            params.extend(values)
        for cond, value in (
            ("ts >= ?", search.since),
            ("ts <= ?", search.until),
            ("ts <= ?", up_to),
            ("line LIKE ? ESCAPE '\\'", None if search.q is None else f"%{_like(search.q)}%"),
        ):
            if value is not None:
                where.append(cond)
                params.append(value)
        if search.tags:
            where.append("(" + " OR ".join(["instr(path, ?) > 0"] * len(search.tags)) + ")")
            params.extend(json.dumps(tag) for tag in search.tags)
        rows = self._newest_last(
            "SELECT ts AS time, path, file, line_no, line FROM traces "
            f"WHERE {' AND '.join(where)} ORDER BY ts DESC, rowid DESC",
            params,
            search.limit,
        )
        for row in rows:
            row["path"] = json.loads(row["path"])
        return rows

    def files(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Checkpointed files, most recently updated last (the reader's resume points)."""
        return self._newest_last(
            "SELECT path, offset, lines, outbox, state, first_seen, updated FROM checkpoints "
            "ORDER BY updated DESC",
            [],
            limit,
        )

    def _newest_last(self, sql: str, params: list[Any], limit: int) -> list[dict[str, Any]]:
        """The first `limit` rows of a newest-first query, turned to newest last."""
        rows = self._query(f"{sql} LIMIT ?", [*params, limit])
        rows.reverse()
        return rows
