"""HistoryReader over a real SQLite file created with the documented schema."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from web_fixtures import insert_rows, make_db, no_thread_leak  # noqa: F401

from store.db import connect
from store.history import HistoryReader, HistoryUnavailable


def metric(
    ts: float, processor: str, count: int, time: float = 0.0, errors: int = 0
) -> dict[str, Any]:
    return {
        "ts": ts,
        "processor": processor,
        "count": count,
        "time": time,
        "errors": errors,
        "retries": errors,
    }


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "inboxd.db"
    make_db(path)
    return path


def test_missing_database_reads_as_empty(tmp_path: Path) -> None:
    reader = HistoryReader(tmp_path / "absent.db")
    assert reader.metrics(0, 1e12) == []
    assert reader.errors() == []
    assert reader.deadletters() == []
    assert reader.files() == []
    assert not (tmp_path / "absent.db").exists()


def test_database_without_tables_reads_as_empty_then_sees_them(tmp_path: Path) -> None:
    path = tmp_path / "inboxd.db"
    sqlite3.connect(path).close()
    reader = HistoryReader(path)
    assert reader.metrics(0, 1e12) == []
    assert reader.errors() == []
    make_db(path)
    insert_rows(path, "metrics", [metric(10.0, "p", 1)])
    assert [r["count"] for r in reader.metrics(0, 1e12)] == [1]


def test_metrics_rows_within_range_oldest_first(db_path: Path) -> None:
    insert_rows(
        db_path,
        "metrics",
        [metric(30.0, "b", 3), metric(10.0, "a", 1), metric(20.0, "a", 2), metric(40.0, "a", 4)],
    )
    reader = HistoryReader(db_path)
    rows = reader.metrics(10.0, 30.0)
    assert rows == [
        {"ts": 10.0, "processor": "a", "count": 1, "time": 0.0, "errors": 0, "retries": 0},
        {"ts": 20.0, "processor": "a", "count": 2, "time": 0.0, "errors": 0, "retries": 0},
        {"ts": 30.0, "processor": "b", "count": 3, "time": 0.0, "errors": 0, "retries": 0},
    ]
    assert [r["count"] for r in reader.metrics(0, 100, "a")] == [1, 2, 4]
    assert [r["count"] for r in reader.metrics(0, 100, limit=2)] == [3, 4]
    assert reader.metrics(50, 10) == []


def test_metrics_step_sums_per_processor_per_bucket(db_path: Path) -> None:
    insert_rows(
        db_path,
        "metrics",
        [
            metric(100.0, "a", 1, 0.5, 1),
            metric(105.0, "a", 2, 0.25, 0),
            metric(119.9, "a", 4, 0.125, 2),
            metric(120.0, "a", 8, 1.0, 0),
            metric(101.0, "b", 16, 2.0, 0),
            metric(179.0, "b", 32, 4.0, 1),
        ],
    )
    reader = HistoryReader(db_path)
    assert reader.metrics(0, 1000, step=60) == [
        {"ts": 60.0, "processor": "a", "count": 7, "time": 0.875, "errors": 3, "retries": 3},
        {"ts": 60.0, "processor": "b", "count": 16, "time": 2.0, "errors": 0, "retries": 0},
        {"ts": 120.0, "processor": "a", "count": 8, "time": 1.0, "errors": 0, "retries": 0},
        {"ts": 120.0, "processor": "b", "count": 32, "time": 4.0, "errors": 1, "retries": 1},
    ]
    assert [(r["ts"], r["count"]) for r in reader.metrics(0, 1000, "a", step=10)] == [
        (100.0, 3),
        (110.0, 4),
        (120.0, 8),
    ]
    assert sum(r["count"] for r in reader.metrics(0, 1000, step=3600)) == 63


def test_errors_newest_last_with_since_processor_and_limit(db_path: Path) -> None:
    insert_rows(
        db_path,
        "errors",
        [
            {
                "ts": float(i),
                "processor": "p" if i % 2 else "q",
                "message": f"ValueError: {i}",
                "file": "in.log",
                "line_no": i,
                "line": f"line {i}",
                "attempt": i % 3 + 1,
            }
            for i in range(10)
        ],
    )
    reader = HistoryReader(db_path)
    assert reader.errors(limit=2) == [
        {
            "processor": "q",
            "message": "ValueError: 8",
            "time": 8.0,
            "file": "in.log",
            "line_no": 8,
            "line": "line 8",
            "attempt": 3,
            "traceback": None,
        },
        {
            "processor": "p",
            "message": "ValueError: 9",
            "time": 9.0,
            "file": "in.log",
            "line_no": 9,
            "line": "line 9",
            "attempt": 1,
            "traceback": None,
        },
    ]
    assert [e["line_no"] for e in reader.errors(since=6.0)] == [6, 7, 8, 9]
    assert [e["line_no"] for e in reader.errors(processor="p", limit=3)] == [5, 7, 9]
    assert reader.errors(limit=0) == []


def test_deadletters_newest_last_filtered_by_file(db_path: Path) -> None:
    insert_rows(
        db_path,
        "deadletter",
        [
            {
                "ts": 50.0,
                "file": "a.log" if i < 3 else "b.log",
                "line_no": i,
                "tag": "warn",
                "processor": "router",
                "message": "KeyError: 'x'",
                "line": f"line {i}",
            }
            for i in range(5)
        ],
    )
    reader = HistoryReader(db_path)
    letters = reader.deadletters(limit=2)
    assert [d["line_no"] for d in letters] == [3, 4]
    assert letters[0]["tag"] == "warn"
    assert letters[0]["message"] == "KeyError: 'x'"
    assert [d["line_no"] for d in reader.deadletters(file="a.log")] == [0, 1, 2]
    assert reader.deadletters(file="a") == []


def test_files_come_from_checkpoints(db_path: Path) -> None:
    insert_rows(
        db_path,
        "checkpoints",
        [
            {
                "dev": 1,
                "ino": i,
                "fp_len": 10,
                "fingerprint": "ab",
                "path": f"f{i}.log",
                "offset": 100 * i,
                "lines": i,
                "outbox": f"f{i}.out",
                "first_seen": 1.0,
                "updated": 10.0 - i,
                "state": "active",
            }
            for i in range(3)
        ],
    )
    files = HistoryReader(db_path).files()
    assert [f["path"] for f in files] == ["f2.log", "f1.log", "f0.log"]
    assert files[0]["offset"] == 200
    assert "fingerprint" not in files[0]


def test_each_thread_reads_on_its_own_connection(db_path: Path) -> None:
    insert_rows(db_path, "metrics", [metric(1.0, "a", 5)])
    reader = HistoryReader(db_path)
    results: list[int] = []
    failures: list[BaseException] = []

    def read() -> None:
        try:
            results.append(reader.metrics(0, 10)[0]["count"])
        except BaseException as exc:
            failures.append(exc)
        finally:
            reader.close()

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    read()
    for thread in threads:
        thread.join(10)
    assert failures == []
    assert results == [5] * 5


def test_reads_while_a_writer_holds_a_transaction(db_path: Path) -> None:
    insert_rows(db_path, "metrics", [metric(1.0, "a", 5)])
    reader = HistoryReader(db_path)
    writer = connect(db_path)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO metrics VALUES (2.0, 'a', 7, 0.0, 0, 0)")
    try:
        assert [r["count"] for r in reader.metrics(0, 10)] == [5]
    finally:
        writer.execute("COMMIT")
        writer.conn.close()
    assert [r["count"] for r in reader.metrics(0, 10)] == [5, 7]


def test_a_file_that_is_not_a_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "inboxd.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(HistoryUnavailable):
        HistoryReader(path).metrics(0, 10)
