"""Every query parameter of every endpoint, over HTTP: each case fails if the parameter
were ignored (the answer with it differs from the answer without it, as it should).

A last test reads /openapi.json and fails when an endpoint gains a parameter that no
case here (or in test_tap.py, for the stream) exercises.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from web_fixtures import insert_rows, make_context, make_db, no_thread_leak, serving  # noqa: F401

Check = Callable[[Any, Any], bool]
# Query parameters of /tap are tested on the live stream in test_tap.py.
TESTED_ELSEWHERE = {("/tap", p) for p in ("tag", "file", "rate", "limit", "seconds")}


def populate(tmp_path: Path) -> None:
    db = tmp_path / "inboxd.db"
    make_db(db)
    insert_rows(db, "metrics", [
        {"ts": 1000.0 + i, "processor": p, "count": 1, "time": 0.5, "errors": 0, "retries": 0}
        for i in range(20) for p in ("tag_router", "keep")
    ])  # fmt: skip
    insert_rows(db, "errors", [
        {"ts": ts, "processor": p, "message": "E: x", "file": "a.log", "line_no": 1}
        for ts, p in ((1000.0, "keep"), (2000.0, "parse"), (3000.0, "keep"))
    ])  # fmt: skip
    insert_rows(db, "deadletter", [
        {"ts": 1000.0 + i, "file": f, "line_no": i, "tag": "x", "processor": "p",
         "message": "E: x", "line": "l"}
        for i, f in enumerate(("a.log", "b.log", "a.log"))
    ])  # fmt: skip
    insert_rows(db, "traces", [
        {"ts": ts, "path": '["start", "info", "end"]', "file": "old/x.log", "line_no": 1,
         "line": "INFO stored long ago"}
        for ts in (100.0, 200.0)
    ])  # fmt: skip
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "inboxd.log").write_text("".join(f"line {i}\n" for i in range(10)))


def paths(doc: list[dict[str, Any]]) -> list[list[str]]:
    return [d["path"] for d in doc]


CASES: list[tuple[str, dict[str, Any], dict[str, Any], Check]] = [
    # (endpoint, base params, params under test, check(without, with))
    ("/trace", {}, {"limit": 1}, lambda a, b: len(a) == 4 and b == a[-1:]),
    ("/traces", {}, {"limit": 1}, lambda a, b: len(a) == 6 and b == a[-1:]),
    (
        "/traces",
        {},
        {"tag": "retry"},
        lambda a, b: paths(b) == [p for p in paths(a) if "retry" in p] != paths(a),
    ),
    (
        "/traces",
        {},
        {"file": "sys/*"},
        lambda a, b: [d["file"] for d in b] == ["sys/c.log"],
    ),
    ("/traces", {}, {"q": "DISK"}, lambda a, b: (len(a), len(b)) == (6, 2)),
    (
        "/traces",
        {},
        {"since": 1500},
        lambda a, b: [t["time"] for t in a][:2] == [100.0, 200.0] and len(b) == 4,
    ),
    (
        "/traces",
        {},
        {"until": 2001.5},
        lambda a, b: [t["time"] for t in b] == [100.0, 200.0, 2000.0, 2001.0] != a,
    ),
    ("/errors", {}, {"limit": 1}, lambda a, b: len(a) == 3 and b == a[-1:]),
    (
        "/errors",
        {},
        {"processor": "warn"},
        lambda a, b: {e["processor"] for e in b} == {"warn"} != {e["processor"] for e in a},
    ),
    (
        "/errors",
        {},
        {"since": 1001.5},
        lambda a, b: [e["time"] for e in b] == [1002.0],
    ),
    (
        "/files",
        {},
        {"limit": 1},
        lambda a, b: len(a) == 2 and [f["path"] for f in b] == ["app/a.log"],
    ),
    (
        "/live",
        {},
        {"files": 1},
        lambda a, b: a["files"] == [] and len(b["files"]) == 1,
    ),
    (
        "/history/stats",
        {"until": 5000},
        {"since": 1010},
        lambda a, b: len(a) == 40 and min(r["ts"] for r in b) == 1010,
    ),
    (
        "/history/stats",
        {"since": 0},
        {"until": 1004.5},
        lambda a, b: len(a) == 40 and max(r["ts"] for r in b) == 1004,
    ),
    (
        "/history/stats",
        {"since": 0, "until": 5000},
        {"processor": "keep"},
        lambda a, b: {r["processor"] for r in b} == {"keep"} != {r["processor"] for r in a},
    ),
    (
        "/history/stats",
        {"since": 0, "until": 5000},
        {"step": 10},
        lambda a, b: (
            [(r["ts"], r["count"]) for r in b if r["processor"] == "keep"]
            == [(1000.0, 10), (1010.0, 10)]
        ),
    ),
    (
        "/history/stats",
        {"since": 0, "until": 5000},
        {"limit": 3},
        lambda a, b: b == a[-3:] != a,
    ),
    (
        "/history/errors",
        {},
        {"since": 1500},
        lambda a, b: [e["time"] for e in b] == [2000.0, 3000.0] != [e["time"] for e in a],
    ),
    (
        "/history/errors",
        {},
        {"processor": "parse"},
        lambda a, b: len(a) == 3 and [e["processor"] for e in b] == ["parse"],
    ),
    (
        "/history/errors",
        {},
        {"limit": 1},
        lambda a, b: len(a) == 3 and b == a[-1:],
    ),
    ("/deadletter", {}, {"limit": 1}, lambda a, b: len(a) == 3 and b == a[-1:]),
    (
        "/deadletter",
        {},
        {"file": "b.log"},
        lambda a, b: len(a) == 3 and [d["file"] for d in b] == ["b.log"],
    ),
    (
        "/logs/inboxd.log",
        {},
        {"tail": 2},
        lambda a, b: a.count("\n") == 10 and b == "line 8\nline 9\n",
    ),
]


def fetch(url: str, path: str, params: dict[str, Any]) -> Any:
    response = httpx.get(f"{url}{path}", params=params, timeout=10)
    assert response.status_code == 200, (path, params, response.text)
    is_json = response.headers["content-type"].startswith("application/json")
    return response.json() if is_json else response.text


@pytest.fixture
def api(tmp_path: Path) -> Any:
    populate(tmp_path)
    with serving(make_context(tmp_path)) as url:
        yield url


@pytest.mark.parametrize(
    ("path", "base", "extra", "check"),
    CASES,
    ids=[f"{path}?{','.join(extra)}" for path, _, extra, _ in CASES],
)
def test_parameter_changes_the_answer(
    api: str, path: str, base: dict[str, Any], extra: dict[str, Any], check: Check
) -> None:
    without = fetch(api, path, base)
    with_it = fetch(api, path, {**base, **extra})
    assert check(without, with_it), (without, with_it)


def test_every_documented_parameter_has_a_case(api: str) -> None:
    doc = httpx.get(f"{api}/openapi.json").json()
    documented = {
        (path, p["name"])
        for path, item in doc["paths"].items()
        for p in item["get"].get("parameters", [])
        if p["in"] == "query"
    }
    covered = {
        ("/logs/{name}" if path.startswith("/logs/") else path, name)
        for path, _, extra, _ in CASES
        for name in extra
    }
    assert documented - TESTED_ELSEWHERE - covered == set()
