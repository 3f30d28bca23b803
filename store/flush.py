"""The flusher: telemetry deltas and new rows to SQLite on a timer, and pruning.

`metrics` gets a row for each processor whose figures changed since the previous flush,
holding the increase, so summing rows gives totals across restarts (an idle daemon adds
none). A flush that fails (disk full, a locked database) keeps its rows for the next try
instead of dropping them, and turns /health's `database` check degraded meanwhile.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import sqlite_utils

from store.db import connect, ensure_schema, transaction
from store.live.health import DEGRADED
from store.live.telemetry import FlushBatch, Telemetry
from store.paths import insert_storable
from store.records import describe
from store.service import Service

log = logging.getLogger("inboxd.flush")

FLUSH_TABLES = ("metrics", "errors", "traces")
PRUNE_TABLES = ("metrics", "errors", "deadletter", "traces")
PRUNE_INTERVAL_S = 60.0
# A zero interval would spin; this is the shortest wait between two flushes.
MIN_INTERVAL_S = 0.05
# Rows kept across failed flushes, per table. Metric rows are folded into one row per
# processor instead of being dropped, so totals survive a long outage; errors and traces
# keep the newest.
PENDING_ROWS_MAX = 50_000
SECONDS_PER_DAY = 86_400.0

Rows = dict[str, list[dict[str, Any]]]


def rows_for_flush(batch: FlushBatch) -> Rows:
    """Table name -> rows for one FlushBatch (pure, no I/O)."""
    paths: dict[tuple[str, ...], str] = {}  # few distinct paths: encode each once
    return {
        "metrics": [dict(row) for row in batch.metrics],
        "errors": [
            {
                "ts": e.ts,
                "processor": e.processor,
                "message": e.message,
                "file": e.file,
                "line_no": e.line_no,
                "line": e.line,
                "attempt": e.attempt,
                "traceback": e.traceback,
            }
            for e in batch.errors
        ],
        "traces": [
            {
                "ts": t.ts,
                "path": paths.get(t.path) or paths.setdefault(t.path, json.dumps(list(t.path))),
                "file": t.file,
                "line_no": t.line_no,
                "line": t.line,
            }
            for t in batch.traces
        ],
    }


def fold_metrics(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per processor summing `rows`, stamped with the latest ts (pure)."""
    folded: dict[str, dict[str, Any]] = {}
    for row in rows:
        acc = folded.get(row["processor"])
        if acc is None:
            folded[row["processor"]] = dict(row)
            continue
        acc["ts"] = max(acc["ts"], row["ts"])
        for key in ("count", "time", "errors", "retries"):
            acc[key] += row[key]
    return list(folded.values())


def merge_pending(pending: Rows, new: Mapping[str, list[dict[str, Any]]], limit: int) -> int:
    """Append `new` to `pending` within `limit` rows a table; returns rows dropped."""
    dropped = 0
    for table, rows in new.items():
        kept = pending.setdefault(table, [])
        kept.extend(rows)
        if len(kept) <= limit:
            continue
        if table == "metrics":
            kept[:] = fold_metrics(kept)
        else:
            dropped += len(kept) - limit
            del kept[: len(kept) - limit]
    return dropped


def write_rows(db: sqlite_utils.Database, rows: Mapping[str, list[dict[str, Any]]]) -> int:
    """Insert every row in one transaction; returns how many were written.

    The schema is made by sqlite-utils; rows go in through its connection with one
    executemany per table, which is an order of magnitude faster than insert_all for
    these narrow rows and keeps the flusher's share of the GIL small.
    """
    written = 0
    with transaction(db):
        for table in FLUSH_TABLES:
            table_rows = rows.get(table)
            if table_rows:
                columns = list(table_rows[0])
                sql = (
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' * len(columns))})"
                )
                insert_storable(db, sql, [tuple(r[c] for c in columns) for r in table_rows])
                written += len(table_rows)
    return written


def prune(db: sqlite_utils.Database, *, retention_days: float, now: float) -> int:
    """Delete rows older than `retention_days`; a retention of 0 or less keeps everything."""
    if retention_days <= 0:
        return 0
    cutoff = now - retention_days * SECONDS_PER_DAY
    deleted = 0
    with transaction(db):
        for table in PRUNE_TABLES:
            deleted += db.execute(f"DELETE FROM {table} WHERE ts < ?", [cutoff]).rowcount
    return deleted


def flush_once(
    telemetry: Telemetry,
    db_path: Path,
    retention_days: float,
    *,
    clock: Callable[[], float] = time.time,
) -> int:
    """Take one FlushBatch, write it and prune, synchronously in the calling thread.

    For `--once` and shutdown paths that have no flusher thread. Errors propagate: the
    caller decides whether a lost flush is fatal. Returns the rows written.
    """
    db = connect(db_path)
    try:
        ensure_schema(db)
        written = write_rows(db, rows_for_flush(telemetry.take_flush(clock())))
        prune(db, retention_days=retention_days, now=clock())
        return written
    finally:
        db.close()


class Flusher(Service):
    """Owns the flusher thread (a Service): flushes every `interval_s`, and once more at stop.

    Thread-safety: the thread opens its own SQLite connection and is the only one to use
    it; the owner only touches the stop Event. Transient SQLite/OS failures are logged
    and retried with the rows kept; anything else ends the thread with `error` set and a
    critical log line, so the daemon sees `is_alive()` false and exits non-zero.
    """

    def __init__(
        self,
        telemetry: Telemetry,
        db_path: Path,
        *,
        interval_s: float,
        retention_days: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__("flusher", thread_name="inboxd-flusher")
        self.telemetry = telemetry
        self.db_path = db_path
        self.interval_s = max(interval_s, MIN_INTERVAL_S)
        self.retention_days = retention_days
        self.flushes = 0
        self.failures = 0
        self.rows_dropped = 0
        self._clock = clock
        self._pending: Rows = {}
        self._db: sqlite_utils.Database | None = None
        self._next_prune = 0.0
        self._failing = False

    def run(self) -> None:
        self._cycle()
        while not self._stop.wait(self.interval_s):
            self._cycle()
        if not self._cycle() and self._pending_count():
            log.error(
                "final flush failed; %d rows not written",
                self._pending_count(),
                extra={"event": "flush_lost"},
            )

    def on_error(self, exc: BaseException) -> None:
        log.critical("flusher thread died: %s", exc, exc_info=exc)

    def on_exit(self) -> None:
        self._close()

    def _cycle(self) -> bool:
        """One flush (and a prune when due); False when it failed and rows were kept."""
        batch = self.telemetry.take_flush(self._clock())
        dropped = merge_pending(self._pending, rows_for_flush(batch), PENDING_ROWS_MAX)
        if dropped:
            self.rows_dropped += dropped
            log.warning(
                "flush backlog full: %d error/trace rows dropped",
                dropped,
                extra={"event": "flush_dropped"},
            )
        try:
            db = self._connection()
            write_rows(db, self._pending)
            self._pending = {}
            self.flushes += 1
            now = self._clock()
            if now >= self._next_prune:
                self._next_prune = now + PRUNE_INTERVAL_S
                prune(db, retention_days=self.retention_days, now=now)
        except (sqlite3.Error, OSError) as exc:
            self.failures += 1
            self.telemetry.add_counts(flush_failures=1)  # inboxd_flush_failures_total
            log.error(
                "flush to %s failed (%s); keeping %d rows for the next try",
                self.db_path,
                exc,
                self._pending_count(),
                extra={"event": "flush_failed"},
            )
            # The connection may be left mid-transaction; start the next try afresh.
            self._close()
            self._failing = True
            self.telemetry.health.set(
                "database", DEGRADED, f"flush failed: {describe(exc)}", owner="flusher"
            )
            return False
        if self._failing:
            self._failing = False
            self.telemetry.health.ok("database", owner="flusher")
            log.info("flush to %s works again", self.db_path, extra={"event": "flush_recovered"})
        return True

    def _pending_count(self) -> int:
        return sum(len(rows) for rows in self._pending.values())

    def _connection(self) -> sqlite_utils.Database:
        if self._db is None:
            db = connect(self.db_path)
            try:
                ensure_schema(db)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                log.debug("closing the flusher's connection failed", exc_info=True)
            self._db = None


__all__ = ["Flusher", "flush_once", "fold_metrics", "merge_pending", "prune", "rows_for_flush"]
