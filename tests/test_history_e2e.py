"""History end to end: metrics flushed to SQLite across restarts, and retention pruning it.

`python daemon.py` runs as a user runs it, in a subprocess; every wait polls a condition
with a deadline.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from daemon_fixtures import Daemon, MakeDaemon, write_config
from ops_fixtures import append, wait_for

from store.db import connect, ensure_schema

DAY_S = 86_400.0


# -- metrics history across restarts ----------------------------------------------------

HISTORY_RULES = """\
def first(line):
    yield "mid", line


def second(line):
    if "bad" in line:
        raise ValueError("bad line: " + line)
    yield "end", line
"""


def run_batch(d: Daemon, file: str, good: int, bad: int) -> dict[str, dict[str, Any]]:
    """Start, ingest `good` + `bad` lines, wait until /stats has them all, stop."""
    d.start("--flush-interval", "0.5")
    lines = [f"{file} ok {i}" for i in range(good)] + [f"{file} bad {i}" for i in range(bad)]
    append(d.inbox / file, lines)
    total = good + bad
    wait_for(lambda: d.stats().get("second", {}).get("count") == total, f"{total} lines in /stats")
    stats = d.stats()
    return stats


def test_metrics_history_sums_to_stats_across_restarts(daemons: MakeDaemon, tmp_path: Path) -> None:
    (tmp_path / "hist.py").write_text(HISTORY_RULES)
    config = write_config(tmp_path, pipeline='start = "hist:first"\nmid = "hist:second"')
    d = daemons(config=config)
    runs = [(40, 5), (25, 3)]
    totals: dict[str, dict[str, float]] = {}
    for number, (good, bad) in enumerate(runs):
        stats = run_batch(d, f"run{number}.log", good, bad)
        assert stats["first"]["count"] == stats["second"]["count"] == good + bad
        assert stats["second"]["errors"] == bad
        for name, figures in stats.items():
            acc = totals.setdefault(name, {"count": 0, "errors": 0, "retries": 0})
            for key in acc:
                acc[key] += figures[key]
        if number == len(runs) - 1:
            check_history_api(d, totals)
        d.stop()

    db = sqlite3.connect(d.state_dir / "inboxd.db")
    try:
        summed = {
            row[0]: {"count": row[1], "errors": row[2], "retries": row[3]}
            for row in db.execute(
                "SELECT processor, SUM(count), SUM(errors), SUM(retries) FROM metrics"
                " GROUP BY processor"
            )
        }
        errors = db.execute("SELECT processor, COUNT(*) FROM errors GROUP BY processor").fetchall()
    finally:
        db.close()
    assert summed == totals
    assert errors == [("second", sum(bad for _, bad in runs))]


def history_sums(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    sums: dict[str, dict[str, float]] = {}
    for row in rows:
        acc = sums.setdefault(row["processor"], {"count": 0, "errors": 0, "retries": 0})
        for key in acc:
            acc[key] += row[key]
    return sums


def check_history_api(d: Daemon, totals: dict[str, dict[str, float]]) -> None:
    """/history/stats rows, raw and in `step` buckets, sum to both runs' totals."""
    wait_for(
        lambda: history_sums(d.get("/history/stats")) == totals,
        f"/history/stats summing to {totals}",
    )
    rows = d.get("/history/stats")
    keys = {"ts", "processor", "count", "time", "errors", "retries"}
    assert rows and all(set(row) == keys for row in rows)
    assert all(isinstance(row["ts"], float) for row in rows)
    buckets = d.get("/history/stats", step=60)
    assert history_sums(buckets) == totals
    assert all(row["ts"] % 60 == 0 for row in buckets)


# -- retention ---------------------------------------------------------------------------


def seed_history(db_path: Path, ts: float, label: str) -> None:
    db = connect(db_path)
    try:
        ensure_schema(db)
        db.table("metrics").insert(
            {"ts": ts, "processor": label, "count": 1, "time": 0.1, "errors": 0, "retries": 0}
        )
        db.table("errors").insert(
            {"ts": ts, "processor": label, "message": "E: x", "file": "f", "line_no": 1,
             "line": "x"}
        )  # fmt: skip
        db.table("traces").insert({"ts": ts, "path": "[]", "file": "f", "line_no": 1})
        db.table("deadletter").insert(
            {"ts": ts, "file": "f", "line_no": 1, "tag": "start", "processor": label,
             "message": "E: x", "line": "x"}
        )  # fmt: skip
    finally:
        db.close()


def history_labels(db_path: Path) -> dict[str, set[str]]:
    db = sqlite3.connect(db_path)
    try:
        found = {
            table: {str(r[0]) for r in db.execute(f"SELECT processor FROM {table}")}
            for table in ("metrics", "errors", "deadletter")
        }
        found["traces"] = {
            "old" if r[0] < time.time() - 20 * DAY_S else "recent"
            for r in db.execute("SELECT ts FROM traces")
        }
    finally:
        db.close()
    return found


def test_retention_prunes_old_history_rows(daemons: MakeDaemon, tmp_path: Path) -> None:
    config = write_config(tmp_path, retention_days=14)
    d = daemons(config=config, flush_interval=0.5)
    d.state_dir.mkdir(parents=True)
    now = time.time()
    seed_history(d.state_dir / "inboxd.db", now - 30 * DAY_S, "old")
    seed_history(d.state_dir / "inboxd.db", now - 1 * DAY_S, "recent")
    assert history_labels(d.state_dir / "inboxd.db")["metrics"] == {"old", "recent"}
    d.start()
    want = {table: {"recent"} for table in ("metrics", "errors", "deadletter", "traces")}
    wait_for(
        lambda: (
            {t: v - {"keep"} for t, v in history_labels(d.state_dir / "inboxd.db").items()} == want
        ),
        "old rows pruned, recent kept",
    )
    d.stop()
    final = history_labels(d.state_dir / "inboxd.db")
    assert {t: v - {"keep"} for t, v in final.items()} == want
