"""The HTTP API served by a real uvicorn server through WebServer: endpoints and the page.

What it lets through (logs, token, headers) is in test_web_access.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from web_fixtures import (  # noqa: F401
    TOKEN,
    insert_rows,
    make_context,
    make_db,
    no_thread_leak,
    path_node,
    populated_telemetry,
    raw_get,
    serving,
)

from store.live.telemetry import Telemetry
from store.records import TraceRecord


def test_stats_has_one_key_per_processor(tmp_path: Path) -> None:
    with serving(make_context(tmp_path)) as url:
        response = httpx.get(f"{url}/stats")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "tag_router": {"count": 310, "time": 3.0, "errors": 1, "retries": 2},
        "info": {"count": 200, "time": 0.25, "errors": 0, "retries": 0},
        "warn": {"count": 100, "time": 0.125, "errors": 3, "retries": 1},
        "idle": {"count": 0, "time": 0.0, "errors": 0, "retries": 0},
    }


def test_trace_lists_paths_newest_last_with_limit(tmp_path: Path) -> None:
    with serving(make_context(tmp_path)) as url:
        everything = httpx.get(f"{url}/trace").json()
        last_two = httpx.get(f"{url}/trace", params={"limit": 2}).json()
        none = httpx.get(f"{url}/trace", params={"limit": 0}).json()
    assert everything == [
        ["start", "info", "end"],
        ["start", "warn", "retry", "end"],
        ["start", "info"],
        ["start", "warn", "end"],
    ]
    assert last_two == everything[-2:]
    assert none == []


def test_trace_is_empty_when_tracing_is_off(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, telemetry=populated_telemetry(trace_enabled=False))
    with serving(ctx) as url:
        assert httpx.get(f"{url}/trace").json() == []
        assert httpx.get(f"{url}/traces").json() == []
        assert httpx.get(f"{url}/health").json()["tracing"] is False


def test_traces_filter_by_tag_file_and_text(tmp_path: Path) -> None:
    with serving(make_context(tmp_path)) as url:

        def get(**params: object) -> list[dict[str, object]]:
            response = httpx.get(f"{url}/traces", params=params)  # type: ignore[arg-type]
            assert response.status_code == 200
            return response.json()  # type: ignore[no-any-return]

        everything = get()
        by_tag = get(tag="retry")
        by_file = get(file="app/*")
        by_text = get(q="DISK")
        combined = get(tag="warn", file="*a.log", q="disk")
        limited = get(file="app/*", limit=1)
    assert everything[0] == {
        "time": 2000.0,
        "path": ["start", "info", "end"],
        "file": "app/a.log",
        "line_no": 1,
        "line": "INFO hello",
    }
    assert [t["line_no"] for t in everything] == [1, 2, 3, 4]
    assert [t["line_no"] for t in by_tag] == [2]
    assert [t["line_no"] for t in by_file] == [1, 2, 4]
    assert [t["line_no"] for t in by_text] == [2, 4]
    assert [t["line_no"] for t in combined] == [4]
    assert [t["line_no"] for t in limited] == [4]


def test_errors_newest_last_with_limit_and_processor(tmp_path: Path) -> None:
    with serving(make_context(tmp_path)) as url:
        everything = httpx.get(f"{url}/errors").json()
        last = httpx.get(f"{url}/errors", params={"limit": 1}).json()
        router = httpx.get(f"{url}/errors", params={"processor": "tag_router"}).json()
    assert everything[0] == {
        "processor": "tag_router",
        "message": "KeyError: 'tag'",
        "time": 1000.0,
        "file": "a.log",
        "line_no": 1,
        "line": "first",
        "attempt": 1,
        "traceback": None,
    }
    assert [e["line"] for e in everything] == ["first", "second", "third"]
    assert [e["line"] for e in last] == ["third"]
    assert [e["line"] for e in router] == ["first", "third"]


def test_files_lists_tracked_files_with_lag(tmp_path: Path) -> None:
    with serving(make_context(tmp_path)) as url:
        files = httpx.get(f"{url}/files").json()
    assert files == [
        {
            "path": "app/a.log",
            "size": 1000,
            "offset": 600,
            "state": "active",
            "outbox": "a.out",
            "lines": 12,
            "updated": 1500.0,
            "reason": None,
            "rule": None,
            "lag": 400,
        },
        {
            "path": "app/b.log",
            "size": 500,
            "offset": 500,
            "state": "idle",
            "outbox": "b.out",
            "lines": 7,
            "updated": 1501.0,
            "reason": None,
            "rule": None,
            "lag": 0,
        },
    ]


def test_health_reports_status_version_and_extra(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, extra_health=lambda: {"engine": "running", "files": 2})
    with serving(ctx) as url:
        response = httpx.get(f"{url}/health")
    doc = response.json()
    assert response.status_code == 200
    assert doc["status"] == "ok"
    assert doc["version"] == "9.9.9"
    assert doc["tracing"] is True
    assert doc["uptime"] >= 0
    assert doc["engine"] == "running"
    assert doc["files"] == 2


def test_health_turns_503_when_the_extra_hook_fails(tmp_path: Path) -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("engine thread died")

    with serving(make_context(tmp_path, extra_health=broken)) as url:
        response = httpx.get(f"{url}/health")
    assert response.status_code == 503
    assert response.json()["status"] == "failing"
    assert response.json()["error"] == "RuntimeError: engine thread died"


def test_history_endpoints_read_the_database(tmp_path: Path) -> None:
    db_path = tmp_path / "inboxd.db"
    make_db(db_path)
    insert_rows(
        db_path,
        "metrics",
        [
            {"ts": 1000.0, "processor": "p", "count": 1, "time": 0.5, "errors": 0, "retries": 0},
            {"ts": 1005.0, "processor": "p", "count": 2, "time": 0.25, "errors": 1, "retries": 1},
            {"ts": 1010.0, "processor": "q", "count": 4, "time": 1.0, "errors": 0, "retries": 0},
        ],
    )
    insert_rows(
        db_path,
        "errors",
        [
            {"ts": 1000.0, "processor": "p", "message": "E: 1", "file": "f", "line_no": 1},
            {"ts": 1001.0, "processor": "q", "message": "E: 2", "file": "g", "line_no": 2},
        ],
    )
    insert_rows(
        db_path,
        "deadletter",
        [
            {
                "ts": 1000.0 + i,
                "file": "f",
                "line_no": i,
                "tag": "x",
                "processor": "p",
                "message": "E: x",
                "line": f"line {i}",
            }
            for i in range(3)
        ],
    )
    with serving(make_context(tmp_path)) as url:
        rows = httpx.get(f"{url}/history/stats", params={"since": 0, "until": 2000}).json()
        buckets = httpx.get(
            f"{url}/history/stats", params={"since": 0, "until": 2000, "step": 10}
        ).json()
        recent = httpx.get(f"{url}/history/stats").json()
        errors = httpx.get(f"{url}/history/errors", params={"processor": "q"}).json()
        letters = httpx.get(f"{url}/deadletter", params={"limit": 2}).json()
    assert rows[0] == {
        "ts": 1000.0,
        "processor": "p",
        "count": 1,
        "time": 0.5,
        "errors": 0,
        "retries": 0,
    }
    assert len(rows) == 3
    assert buckets == [
        {"ts": 1000.0, "processor": "p", "count": 3, "time": 0.75, "errors": 1, "retries": 1},
        {"ts": 1010.0, "processor": "q", "count": 4, "time": 1.0, "errors": 0, "retries": 0},
    ]
    assert recent == []
    assert errors == [
        {
            "processor": "q",
            "message": "E: 2",
            "time": 1001.0,
            "file": "g",
            "line_no": 2,
            "line": None,
            "attempt": None,
            "traceback": None,
        }
    ]
    assert [d["line"] for d in letters] == ["line 1", "line 2"]
    assert set(letters[0]) == {"id", "ts", "file", "line_no", "tag", "processor", "message", "line"}


def test_history_is_empty_before_the_database_exists(tmp_path: Path) -> None:
    with serving(make_context(tmp_path)) as url:
        for path in ("/history/stats", "/history/errors", "/deadletter"):
            response = httpx.get(f"{url}{path}")
            assert response.status_code == 200
            assert response.json() == []


def test_page_and_static_assets_are_served(tmp_path: Path) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<!doctype html><title>inboxd</title>")
    (static / "style.css").write_text("body { margin: 0 }")
    with serving(make_context(tmp_path)) as url:
        page = httpx.get(f"{url}/")
        css = httpx.get(f"{url}/static/style.css")
        escape = raw_get(url, "/static/../../secret")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<title>inboxd</title>" in page.text
    assert css.status_code == 200
    assert css.text == "body { margin: 0 }"
    assert escape[0] == 404


def test_page_is_503_without_index(tmp_path: Path) -> None:
    with serving(make_context(tmp_path)) as url:
        response = httpx.get(f"{url}/")
    assert response.status_code == 503
    assert "not installed" in response.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/trace?limit=-1", 422),
        ("/trace?limit=abc", 422),
        ("/trace?limit=99999999999999999999", 200),
        ("/errors?limit=-5", 422),
        ("/traces?limit=1000000&q=x", 200),
        ("/history/stats?since=nan", 422),
        ("/history/stats?until=inf", 422),
        ("/history/stats?step=0", 422),
        ("/history/stats?step=1e300", 422),
        ("/history/stats?since=1e308&until=-1e308&step=60", 200),
        ("/history/errors?since=abc", 422),
        ("/deadletter?limit=1e3", 422),
        ("/logs/inboxd.log?tail=-1", 422),
        ("/logs/%ff%fe", 422),
    ],
)
def test_bad_parameters_are_rejected_never_500(tmp_path: Path, path: str, status: int) -> None:
    with serving(make_context(tmp_path)) as url:
        assert raw_get(url, path)[0] == status


def test_limits_are_clamped(tmp_path: Path) -> None:
    telemetry = Telemetry(trace_enabled=True, trace_size=20_000)
    telemetry.add_trace_records(
        [TraceRecord(float(i), path_node("end"), "f", i, "x") for i in range(12_000)]
    )
    with serving(make_context(tmp_path, telemetry=telemetry)) as url:
        clamped = httpx.get(f"{url}/trace", params={"limit": 50_000}).json()
        everything = httpx.get(f"{url}/trace").json()
        detailed = httpx.get(f"{url}/traces", params={"limit": 50_000}).json()
    assert len(clamped) == 10_000
    assert len(everything) == 12_000
    assert len(detailed) == 10_000
    assert detailed[-1]["line_no"] == 11_999


def test_two_apps_coexist_without_globals(tmp_path: Path) -> None:
    first = make_context(tmp_path, version="1")
    second = make_context(tmp_path, version="2", token=TOKEN)
    with serving(first) as url_one, serving(second) as url_two:
        assert httpx.get(f"{url_one}/health").json()["version"] == "1"
        assert httpx.get(f"{url_two}/health").json()["version"] == "2"
        assert httpx.get(f"{url_one}/stats").status_code == 200
        assert httpx.get(f"{url_two}/stats").status_code == 401
