"""The flusher: deltas to real SQLite, pruning, failures and the thread's life."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from store import db as store_db
from store.flush import (
    Flusher,
    flush_once,
    fold_metrics,
    merge_pending,
    rows_for_flush,
)
from store.live.telemetry import FlushBatch, Telemetry
from store.records import ErrorRecord, TraceRecord

DAY_S = 86_400.0
WAIT_S = 10.0


def wait_for(condition: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """Poll `condition` until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        pause.wait(0.01)


def query(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db_path)
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def metric_sums(db_path: Path) -> dict[str, tuple[int, float, int, int]]:
    rows = query(
        db_path,
        "SELECT processor, SUM(count), SUM(time), SUM(errors), SUM(retries) "
        "FROM metrics GROUP BY processor",
    )
    return {str(r[0]): (int(r[1]), float(r[2]), int(r[3]), int(r[4])) for r in rows}


def totals(*telemetries: Telemetry) -> dict[str, tuple[int, float, int, int]]:
    out: dict[str, tuple[int, float, int, int]] = {}
    for t in telemetries:
        for name, s in t.stats().items():
            c, tm, e, r = out.get(name, (0, 0.0, 0, 0))
            out[name] = (
                c + int(s["count"]),
                tm + s["time"],
                e + int(s["errors"]),
                r + int(s["retries"]),
            )
    return out


def assert_same_totals(
    got: dict[str, tuple[int, float, int, int]], want: dict[str, tuple[int, float, int, int]]
) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert got[name][0] == want[name][0]
        assert got[name][1] == pytest.approx(want[name][1])
        assert got[name][2:] == want[name][2:]


def trace_node(*tags: str) -> tuple[str, ...]:
    return tags


def test_rows_for_flush_builds_one_list_per_table() -> None:
    batch = FlushBatch(
        ts=100.0,
        metrics=[
            {"ts": 100.0, "processor": "keep", "count": 3, "time": 0.5, "errors": 0, "retries": 0}
        ],
        errors=[
            ErrorRecord(99.0, "tag_router", "KeyError: 'tag'", "a.log", 4, "{}", 2, "Traceback")
        ],
        traces=[TraceRecord(98.0, trace_node("start", "info", "retry", "end"), "a.log", 2, "x")],
    )
    rows = rows_for_flush(batch)
    assert rows["metrics"] == batch.metrics
    assert rows["metrics"][0] is not batch.metrics[0]
    assert rows["errors"] == [
        {
            "ts": 99.0,
            "processor": "tag_router",
            "message": "KeyError: 'tag'",
            "file": "a.log",
            "line_no": 4,
            "line": "{}",
            "attempt": 2,
            "traceback": "Traceback",
        }
    ]
    assert rows["traces"] == [
        {
            "ts": 98.0,
            "path": '["start", "info", "retry", "end"]',
            "file": "a.log",
            "line_no": 2,
            "line": "x",
        }
    ]


def test_merge_pending_folds_metrics_and_keeps_newest_rows() -> None:
    pending: dict[str, list[dict[str, Any]]] = {}
    for i in range(3):
        dropped = merge_pending(
            pending,
            {
                "metrics": [
                    {
                        "ts": float(i),
                        "processor": "p",
                        "count": 1,
                        "time": 0.5,
                        "errors": 1,
                        "retries": 0,
                    }
                ],
                "errors": [{"ts": float(i)}, {"ts": float(i) + 0.5}],
            },
            limit=2,
        )
        assert dropped == (0 if i == 0 else 2)
    assert pending["metrics"] == [
        {"ts": 2.0, "processor": "p", "count": 3, "time": 1.5, "errors": 3, "retries": 0}
    ]
    assert pending["errors"] == [{"ts": 2.0}, {"ts": 2.5}]
    assert fold_metrics([]) == []


def test_flush_once_writes_metrics_errors_and_traces(tmp_path: Path) -> None:
    db_path = tmp_path / "inboxd.db"
    t = Telemetry(trace_enabled=True)
    t.add_stats({"tag_router": [10, 0.25, 1, 2], "idle": [0, 0.0, 0, 0]})
    t.add_errors([ErrorRecord(time.time(), "tag_router", "ValueError: bad", "a.log", 3, "bad")])
    t.add_trace_records(
        [TraceRecord(time.time(), trace_node("start", "warn", "end"), "a.log", 1, "w")]
    )
    assert flush_once(t, db_path, 14.0) == 3
    assert metric_sums(db_path) == {"tag_router": (10, 0.25, 1, 2)}
    assert query(db_path, "SELECT processor, message, file, line_no, line FROM errors") == [
        ("tag_router", "ValueError: bad", "a.log", 3, "bad")
    ]
    [(path, file, line_no)] = query(db_path, "SELECT path, file, line_no FROM traces")
    assert (json.loads(str(path)), file, line_no) == (["start", "warn", "end"], "a.log", 1)
    # Nothing new: a second flush writes nothing.
    assert flush_once(t, db_path, 14.0) == 0


def flushed_past(flusher: Flusher, seen: int) -> Callable[[], bool]:
    return lambda: flusher.flushes > seen


def run_daemon_lifetime(db_path: Path, batches: int) -> Telemetry:
    """One daemon run: a Telemetry written while its Flusher flushes, then stopped."""
    t = Telemetry()
    flusher = Flusher(t, db_path, interval_s=0.02, retention_days=14.0)
    flusher.start()
    try:
        for i in range(batches):
            t.add_stats({"tag_router": [5, 0.125, i % 2, 1], "keep": [3, 0.0625, 0, 0]})
            wait_for(flushed_past(flusher, flusher.flushes))
        t.add_stats({"keep": [1, 0.5, 0, 0]})
    finally:
        flusher.stop()
        flusher.join(WAIT_S)
    assert not flusher.is_alive()
    assert flusher.error is None
    return t


def test_deltas_sum_to_totals_across_two_daemon_runs(tmp_path: Path) -> None:
    db_path = tmp_path / "inboxd.db"
    first = run_daemon_lifetime(db_path, batches=4)
    second = run_daemon_lifetime(db_path, batches=3)
    assert_same_totals(metric_sums(db_path), totals(first, second))
    # Deltas, not running totals: several rows per processor, none bigger than a batch.
    [(rows, biggest)] = query(
        db_path, "SELECT COUNT(*), MAX(count) FROM metrics WHERE processor = 'tag_router'"
    )
    assert int(rows) >= 2
    assert int(biggest) <= 10


def test_stop_flushes_one_last_time(tmp_path: Path) -> None:
    db_path = tmp_path / "inboxd.db"
    t = Telemetry(trace_enabled=True)
    flusher = Flusher(t, db_path, interval_s=3600.0, retention_days=14.0)
    flusher.start()
    wait_for(lambda: flusher.flushes >= 1)
    t.add_stats({"keep": [7, 0.5, 0, 0]})
    t.add_trace_records([TraceRecord(time.time(), trace_node("start", "debug"), None, None, None)])
    flusher.stop()
    flusher.stop()
    flusher.join(WAIT_S)
    assert not flusher.is_alive()
    assert metric_sums(db_path) == {"keep": (7, 0.5, 0, 0)}
    assert query(db_path, "SELECT path FROM traces") == [('["start", "debug"]',)]


def seed_old_and_new_rows(db_path: Path, now: float) -> None:
    db = store_db.connect(db_path)
    try:
        store_db.ensure_schema(db)
        for ts in (now - 20 * DAY_S, now - 1 * DAY_S):
            db.table("metrics").insert(
                {"ts": ts, "processor": "p", "count": 1, "time": 0.0, "errors": 0, "retries": 0}
            )
            db.table("errors").insert({"ts": ts, "processor": "p", "message": "E: x"})
            db.table("deadletter").insert(
                {"ts": ts, "tag": "t", "processor": "p", "message": "E: x", "line": "l"}
            )
            db.table("traces").insert({"ts": ts, "path": '["start"]'})
    finally:
        db.close()


def kept_ts(db_path: Path, now: float) -> dict[str, list[float]]:
    return {
        table: [
            round((now - float(r[0])) / DAY_S) for r in query(db_path, f"SELECT ts FROM {table}")
        ]
        for table in ("metrics", "errors", "deadletter", "traces")
    }


def test_flush_once_prunes_rows_older_than_retention(tmp_path: Path) -> None:
    db_path, now = tmp_path / "inboxd.db", time.time()
    seed_old_and_new_rows(db_path, now)
    flush_once(Telemetry(), db_path, 14.0)
    assert kept_ts(db_path, now) == {t: [1] for t in ("metrics", "errors", "deadletter", "traces")}


def test_flusher_prunes_at_start(tmp_path: Path) -> None:
    db_path, now = tmp_path / "inboxd.db", time.time()
    seed_old_and_new_rows(db_path, now)
    flusher = Flusher(Telemetry(), db_path, interval_s=3600.0, retention_days=14.0)
    flusher.start()
    try:
        wait_for(lambda: flusher.flushes >= 1)
    finally:
        flusher.stop()
        flusher.join(WAIT_S)
    assert kept_ts(db_path, now) == {t: [1] for t in ("metrics", "errors", "deadletter", "traces")}


def test_zero_retention_keeps_everything(tmp_path: Path) -> None:
    db_path, now = tmp_path / "inboxd.db", time.time()
    seed_old_and_new_rows(db_path, now)
    flush_once(Telemetry(), db_path, 0.0)
    assert kept_ts(db_path, now)["metrics"] == [20, 1]


def test_a_locked_database_delays_rows_without_losing_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path = tmp_path / "inboxd.db"
    setup = store_db.connect(db_path)
    store_db.ensure_schema(setup)
    setup.close()
    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_MS", 20)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    t = Telemetry()
    flusher = Flusher(t, db_path, interval_s=0.02, retention_days=14.0)
    flusher.start()
    try:
        t.add_stats({"keep": [4, 0.25, 0, 0]})
        wait_for(lambda: flusher.failures >= 2)
        t.add_stats({"keep": [6, 0.25, 1, 0]})
        failures = flusher.failures
        wait_for(lambda: flusher.failures > failures)
        assert flusher.is_alive()
        blocker.execute("ROLLBACK")
        wait_for(lambda: flusher.flushes >= 1)
    finally:
        blocker.close()
        flusher.stop()
        flusher.join(WAIT_S)
    assert flusher.error is None
    assert metric_sums(db_path) == {"keep": (10, 0.5, 1, 0)}


class BrokenTelemetry(Telemetry):
    def take_flush(self, now: float | None = None) -> FlushBatch:
        raise RuntimeError("telemetry is broken")


def test_an_unexpected_error_ends_the_thread_visibly(tmp_path: Path) -> None:
    flusher = Flusher(BrokenTelemetry(), tmp_path / "inboxd.db", interval_s=0.02, retention_days=1)
    flusher.start()
    flusher.join(WAIT_S)
    assert not flusher.is_alive()
    assert isinstance(flusher.error, RuntimeError)
    flusher.stop()


def test_stop_and_join_before_start_are_harmless(tmp_path: Path) -> None:
    flusher = Flusher(Telemetry(), tmp_path / "inboxd.db", interval_s=1.0, retention_days=1)
    flusher.stop()
    flusher.join(0.1)
    assert not flusher.is_alive()
    assert not (tmp_path / "inboxd.db").exists()
