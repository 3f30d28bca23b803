"""Shared helpers for the web, history, log-file and metrics tests: real parts only."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sinks.file import FileSpec
from sinks.http import HttpSpec
from sinks.sqlite import SqliteSpec
from store.db import connect, ensure_schema
from store.live.sinkboard import SinkBoard
from store.live.telemetry import Telemetry
from store.records import ErrorRecord, FileStatus, TraceRecord
from web.app import ApiContext, create_app
from web.server import WebServer

THREAD_GRACE_S = 5.0
# The API token the token tests set.
TOKEN = "s3cret-token"


@pytest.fixture(autouse=True)
def no_thread_leak() -> Iterator[None]:
    """Fail a test that leaves threads running after a short grace period."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_GRACE_S
    leaked: list[threading.Thread] = []
    for thread in set(threading.enumerate()) - before:
        thread.join(max(deadline - time.monotonic(), 0.0))
        if thread.is_alive():
            leaked.append(thread)
    if leaked:
        pytest.fail(f"threads left running: {[t.name for t in leaked]}")


def path_node(*tags: str) -> tuple[str, ...]:
    """The trace path `start, *tags`."""
    return ("start", *tags)


def populated_telemetry(*, trace_enabled: bool = True) -> Telemetry:
    """A Telemetry filled through its writer API, as the processing thread would."""
    telemetry = Telemetry(trace_enabled=trace_enabled, trace_size=100, errors_size=100)
    telemetry.register(["tag_router", "info", "warn", "idle"])
    telemetry.add_stats(
        {"tag_router": [300, 2.5, 1, 2], "info": [200, 0.25, 0, 0], "warn": [100, 0.125, 3, 1]}
    )
    telemetry.add_stats({"tag_router": [10, 0.5, 0, 0]})
    telemetry.add_errors(
        [
            ErrorRecord(1000.0, "tag_router", "KeyError: 'tag'", "a.log", 1, "first"),
            ErrorRecord(1001.0, "warn", "ValueError: bad", "b.log", 2, "second"),
            ErrorRecord(1002.0, "tag_router", "KeyError: 'x'", "a.log", 3, "third"),
        ]
    )
    if trace_enabled:
        telemetry.add_trace_records(
            [
                TraceRecord(2000.0, path_node("info", "end"), "app/a.log", 1, "INFO hello"),
                TraceRecord(2001.0, path_node("warn", "retry", "end"), "app/b.log", 2, "WARN Disk"),
                TraceRecord(2002.0, path_node("info"), "sys/c.log", 3, "INFO dropped"),
                TraceRecord(2003.0, path_node("warn", "end"), "app/a.log", 4, "warn disk full"),
            ]
        )
    telemetry.add_counts(bytes_read=4096, lines_read=310, lines_out=290)
    telemetry.set_gauge("dirty", 2)
    telemetry.set_files(
        [
            FileStatus("app/a.log", 1000, 600, "active", "a.out", 12, 1500.0),
            FileStatus("app/b.log", 500, 500, "idle", "b.out", 7, 1501.0),
        ]
    )
    return telemetry


SINK_SPECS = (
    FileSpec("alerts", "file", path="alerts/{file}"),
    SqliteSpec("rows", "sqlite", path="lines.db", table="lines"),
    HttpSpec("hook", "http", url="http://127.0.0.1:9/ingest", batch=100),
)
HOOK_REASON = "POST http://127.0.0.1:9/ingest: ConnectError: [Errno 111] Connection refused"


def install_sinks(telemetry: Telemetry) -> SinkBoard:
    """Give `telemetry` the board the daemon builds for three sinks, with figures as the
    sinks would report them: two delivering, the http one failing with lines spooled."""
    board = SinkBoard(SINK_SPECS, telemetry.health, outbox="out", state_dir="var")
    telemetry.sinks = board
    board.delivered("alerts", 40)
    board.delivered("rows", 25)
    board.delivered("rows", 5)
    board.delivered("hook", 300, pending=0)
    board.add_pending("hook", 120)
    board.failed("hook", "timeout")
    board.failed("hook", HOOK_REASON)
    board.failed("hook", HOOK_REASON)
    return board


def make_db(path: Path) -> None:
    """Create the documented schema in a real SQLite file."""
    db = connect(path)
    ensure_schema(db)
    db.conn.close()


def insert_rows(path: Path, table: str, rows: list[dict[str, Any]]) -> None:
    db = connect(path)
    db.table(table).insert_all(rows)
    db.conn.close()


def make_context(tmp_path: Path, **overrides: Any) -> ApiContext:
    """An ApiContext over tmp_path with a populated telemetry."""
    values: dict[str, Any] = {
        "telemetry": populated_telemetry(),
        "db_path": tmp_path / "inboxd.db",
        "logs_dir": tmp_path / "logs",
        "token": None,
        "version": "9.9.9",
        "static_dir": tmp_path / "static",
    }
    values.update(overrides)
    return ApiContext(**values)


@contextlib.contextmanager
def serving(ctx: ApiContext) -> Iterator[str]:
    """A real uvicorn server for `ctx` on a free port; yields its base URL."""
    server = WebServer(create_app(ctx), host="127.0.0.1", port=0)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()
        server.join(10)
        assert not server.is_alive()


def raw_get(
    base_url: str, raw_path: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """GET `raw_path` byte for byte (no client-side normalisation); (status, body)."""
    host, port = base_url.removeprefix("http://").split(":")
    lines = [f"GET {raw_path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body
