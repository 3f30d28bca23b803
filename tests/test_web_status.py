"""/files with a limit and /live, the dashboard's one request a second, on a real server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from store.live.telemetry import Telemetry
from store.records import FileStatus
from web.app import ApiContext, create_app
from web.server import WebServer


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Telemetry], str]]:
    """Start a WebServer over a Telemetry; yields a function returning its base URL."""
    servers: list[WebServer] = []

    def start(telemetry: Telemetry) -> str:
        context = ApiContext(telemetry=telemetry, db_path=tmp_path / "x.db", logs_dir=tmp_path)
        server = WebServer(create_app(context), port=0)
        server.start()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        server.stop()
        server.join(5)


def test_files_limit_returns_the_most_behind_first(serve: Callable[[Telemetry], str]) -> None:
    telemetry = Telemetry()
    telemetry.set_files(
        [
            FileStatus("done.log", 10, 10, "active", "done.log", 1, 300.0),
            FileStatus("behind.log", 500, 100, "active", "behind.log", 5, 100.0),
            FileStatus("recent.log", 20, 20, "active", "recent.log", 2, 400.0),
            FileStatus("little.log", 50, 40, "active", "little.log", 3, 200.0),
        ]
    )
    url = serve(telemetry)
    assert [f["path"] for f in httpx.get(f"{url}/files").json()] == [
        "done.log", "behind.log", "recent.log", "little.log",
    ]  # fmt: skip
    limited = httpx.get(f"{url}/files", params={"limit": 3}).json()
    assert [f["path"] for f in limited] == ["behind.log", "little.log", "recent.log"]
    assert limited[0]["lag"] == 400


def test_live_holds_stats_files_and_health_in_one_document(
    serve: Callable[[Telemetry], str],
) -> None:
    telemetry = Telemetry(trace_enabled=True)
    telemetry.register(["tag_router"])
    telemetry.add_stats({"tag_router": [3, 0.5, 1, 0]})
    telemetry.set_files(
        [
            FileStatus("a.log", 10, 10, "active", "a.log", 1, 1.0),
            FileStatus("b.log", 90, 10, "active", "b.log", 1, 2.0),
        ]
    )
    url = serve(telemetry)
    doc = httpx.get(f"{url}/live", params={"files": 1}).json()
    assert set(doc) == {"stats", "files", "health", "sinks", "outbox"}
    assert doc["sinks"] == [] and doc["outbox"] == {"lines": 0}
    assert doc["stats"] == httpx.get(f"{url}/stats").json()
    assert [f["path"] for f in doc["files"]] == ["b.log"]
    assert doc["health"]["status"] == "ok"
    assert doc["health"]["tracing"] is True
    assert httpx.get(f"{url}/live").json()["files"] == []
