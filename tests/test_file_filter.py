"""The `file` filter of /traces and /deadletter, and the OpenAPI description of every
parameter, over a real uvicorn server.

/traces answers from two places (the in-memory ring, then SQLite for older traces) and
/deadletter from SQLite: a pattern must pick the same files in all three.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from web_fixtures import insert_rows, make_context, make_db, no_thread_leak, serving  # noqa: F401

from store.live.telemetry import Telemetry
from store.records import TraceRecord

FILES = [
    "a.log",
    "app/a.log",
    "app/b.log",
    "app/a.log.1",
    "app/sub/c.log",
    "sys/c.log",
    "App/a.log",
    "odd%_[x].log",
]
# pattern -> the files it matches: a glob over the whole path, case-sensitive.
EXPECTED: dict[str, set[str]] = {
    "app/a.log": {"app/a.log"},
    "a.log": {"a.log"},
    "app": set(),
    "app/*": {"app/a.log", "app/b.log", "app/a.log.1", "app/sub/c.log"},
    "*.log": set(FILES) - {"app/a.log.1"},
    "*a.log*": {"a.log", "app/a.log", "app/a.log.1", "App/a.log"},
    "app/?.log": {"app/a.log", "app/b.log"},
    "[as]*/c.log": {"app/sub/c.log", "sys/c.log"},
    "[!a]*": {"App/a.log", "odd%_[x].log", "sys/c.log"},
    "APP/*": set(),
    "odd%_[[]x].log": {"odd%_[x].log"},
    "%": set(),
}
RING_TS = 2000.0  # traces in memory; the stored ones are older
STORED_TS = 1000.0


def ring_telemetry() -> Telemetry:
    telemetry = Telemetry(trace_enabled=True, trace_size=100, errors_size=100)
    telemetry.add_trace_records(
        [
            TraceRecord(RING_TS + i, ("start", "info", "end"), f, i, f"ring {f}")
            for i, f in enumerate(FILES)
        ]
    )
    return telemetry


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    db = tmp_path / "inboxd.db"
    make_db(db)
    insert_rows(db, "traces", [
        {"ts": STORED_TS + i, "path": '["start", "info", "end"]', "file": f, "line_no": i,
         "line": f"stored {f}"}
        for i, f in enumerate(FILES)
    ])  # fmt: skip
    insert_rows(db, "deadletter", [
        {"ts": STORED_TS + i, "file": f, "line_no": i, "tag": "x", "processor": "p",
         "message": "UnknownTag: x", "line": f"dead {f}"}
        for i, f in enumerate(FILES)
    ])  # fmt: skip
    with serving(make_context(tmp_path, telemetry=ring_telemetry())) as url:
        yield url


def get(url: str, path: str, **params: Any) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}{path}", params=params, timeout=10)
    assert response.status_code == 200, (path, params, response.text)
    found: list[dict[str, Any]] = response.json()
    return found


def test_traces_and_deadletter_match_file_the_same_way(api: str) -> None:
    for pattern, expected in EXPECTED.items():
        traces = get(api, "/traces", file=pattern)
        ring = {t["file"] for t in traces if t["time"] >= RING_TS}
        stored = {t["file"] for t in traces if t["time"] < RING_TS}
        dead = {d["file"] for d in get(api, "/deadletter", file=pattern)}
        assert (ring, stored, dead) == (expected, expected, expected), pattern
    # An empty pattern filters nothing on either endpoint.
    assert len(get(api, "/traces", file="")) == 2 * len(FILES)
    assert len(get(api, "/deadletter", file="")) == len(FILES)


def test_every_parameter_of_every_endpoint_has_a_description(api: str) -> None:
    doc = httpx.get(f"{api}/openapi.json", timeout=10).json()
    parameters = [
        (method.upper(), path, p["in"], p["name"], p.get("description"))
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        for p in operation.get("parameters", [])
    ]
    assert len(parameters) >= 25  # every endpoint's, not a few
    assert [p for p in parameters if not (p[4] or "").strip()] == []
    # The file filter says how it matches, on both endpoints.
    for path in ("/traces", "/deadletter"):
        (file_doc,) = [p[4] for p in parameters if p[1] == path and p[3] == "file"]
        assert "glob" in file_doc and "case-sensitive" in file_doc
