"""`/traces` reaches past the in-memory ring into SQLite: a live traced daemon with a
small ring still finds, by tag, file, text and time, lines that left the ring long ago."""

from __future__ import annotations

from pathlib import Path

import httpx
from daemon_fixtures import MakeDaemon
from net_fixtures import wait_for
from web_fixtures import insert_rows, make_context, make_db, no_thread_leak, serving  # noqa: F401

from store.history import HistoryReader, TraceSearch
from store.records import TraceRecord
from web.traces_route import search_traces


def test_a_small_ring_still_finds_old_lines_in_sqlite(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(extra_args=["--trace", "--trace-size", "5"]).start()
    (daemon.inbox / "old.log").write_text("WARN needle-old disk\n" + "INFO filler\n" * 50)
    wait_for(lambda: daemon.stats()["tag_router"]["count"] == 51, 20, "first file routed")
    (daemon.inbox / "new.log").write_text("INFO fresh\n" * 20)
    wait_for(lambda: daemon.stats()["tag_router"]["count"] == 71, 20, "second file routed")

    def stored() -> list[dict[str, object]]:
        found: list[dict[str, object]] = daemon.get("/traces", q="needle-old")
        return found

    (old,) = wait_for(stored, 20, "the old line found through SQLite")
    assert old["file"] == "old.log" and old["line_no"] == 1
    assert old["path"] == ["start", "warn", "redact", "end"]
    assert [t["file"] for t in daemon.get("/traces", limit=5)] == ["new.log"] * 5
    wait_for(lambda: len(daemon.get("/traces", limit=100)) == 71, 20, "every trace, once")
    everything = daemon.get("/traces", limit=100)
    keys = [(t["file"], t["line_no"]) for t in everything]
    assert len(set(keys)) == 71
    by_tag = daemon.get("/traces", tag="warn")
    assert [t["line_no"] for t in by_tag] == [1]
    assert daemon.get("/traces", file="old.*", q="filler", limit=3)[-1]["line_no"] == 51
    assert daemon.get("/traces", q="needle-old", until=old["time"] - 1) == []
    (by_name,) = daemon.get("/traces", tag="keep", q="needle-old")  # processor of `warn`
    assert by_name["line_no"] == 1
    daemon.stop()


def test_stored_traces_come_before_the_ring_and_never_twice(tmp_path: Path) -> None:
    db = tmp_path / "inboxd.db"
    make_db(db)
    rows = [
        {"ts": float(ts), "path": '["start", "a_b%", "end"]', "file": "f.log", "line_no": ts,
         "line": f"line {ts} 100%_done"}
        for ts in (1, 2, 3)
    ]  # fmt: skip
    insert_rows(db, "traces", rows)
    history = HistoryReader(db)
    assert [r["line_no"] for r in history.traces(TraceSearch(tags=("a_b%",)))] == [1, 2, 3]
    assert history.traces(TraceSearch(tags=("a_b",))) == [], "a tag matches a whole element"
    assert [r["line_no"] for r in history.traces(TraceSearch(q="100%_D"))] == [1, 2, 3]
    assert history.traces(TraceSearch(q="100x_d")) == [], "% and _ are literal"
    assert [r["line_no"] for r in history.traces(TraceSearch(limit=2))] == [2, 3]
    assert [r["line_no"] for r in history.traces(TraceSearch(), up_to=2.0)] == [1, 2]
    with serving(make_context(tmp_path)) as url:
        everything = httpx.get(f"{url}/traces").json()
    ring = make_context(tmp_path).telemetry.trace_records()
    assert [t["time"] for t in everything] == [1.0, 2.0, 3.0, *[r.ts for r in ring]]
    found = search_traces(ring, history, TraceSearch(limit=len(ring)))
    assert [t["time"] for t in found] == [r.ts for r in ring], "no SQLite when the ring suffices"
    history.close()


def test_the_ring_holding_the_end_of_a_batch_is_completed_from_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "inboxd.db"
    make_db(db)
    path = ("start", "info", "end")
    insert_rows(db, "traces", [
        {"ts": 5.0, "path": '["start", "info", "end"]', "file": "b.log", "line_no": n,
         "line": f"line {n}"}
        for n in (1, 2, 3, 4)
    ])  # fmt: skip
    ring = [TraceRecord(5.0, path, "b.log", n, f"line {n}") for n in (3, 4)]
    history = HistoryReader(db)
    found = search_traces(ring, history, TraceSearch(limit=10))
    assert [t["line_no"] for t in found] == [1, 2, 3, 4]
    assert [t["line_no"] for t in search_traces(ring, history, TraceSearch(limit=3))] == [2, 3, 4]
    history.close()


def test_a_processor_is_found_by_its_name_as_well_as_its_tag(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, pipeline_tags=lambda: {"warn": "throttle", "info": "keep"})
    with serving(ctx) as url:
        by_name = httpx.get(f"{url}/traces", params={"tag": "throttle"}).json()
        by_tag = httpx.get(f"{url}/traces", params={"tag": "warn"}).json()
        unknown = httpx.get(f"{url}/traces", params={"tag": "nobody"}).json()
    assert by_name == by_tag != []
    assert all("warn" in t["path"] for t in by_name)
    assert unknown == []
