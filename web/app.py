"""The HTTP API and dashboard: `create_app(ctx)` builds a FastAPI app with no globals.

Handlers that only read memory are `async` and run on the server's event loop: they copy
a Telemetry snapshot (taken under its lock) and serialise it outside, to plain JSON
bytes without pydantic, since they share the GIL with a busy engine. Handlers that touch
SQLite or files are plain functions run in the worker pool, each worker on its own
read-only connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from store.filematch import FILE_GLOB_HELP
from store.history import HistoryReader, HistoryUnavailable
from store.live.telemetry import Telemetry
from store.logfiles import (
    LOG_NAME_PATTERN,
    InvalidLogName,
    LogNotFound,
    LogUnreadable,
    list_logs,
    read_log,
)
from web import health as web_health
from web.docs_route import add_docs_route, finish_openapi
from web.metrics import build_registry, render
from web.responses import json_response
from web.schemas import (
    COMMON_RESPONSES,
    DeadLetterDoc,
    ErrorDoc,
    FileDoc,
    HealthDoc,
    LiveDoc,
    LogFileDoc,
    MetricRow,
    StatsDoc,
    ValidationProblem,
    ok,
    problem,
    text,
)
from web.security import GuardMiddleware
from web.sinks_route import add_sinks_route
from web.tap_route import add_tap_route
from web.traces_route import add_traces_route

DEFAULT_STATIC_DIR = Path(__file__).resolve().parent / "static"
LIMIT_MAX = 10_000
HISTORY_ROWS_MAX = 100_000
TAIL_LINES_MAX = 100_000
HISTORY_WINDOW_S = 24 * 3600.0
STEP_MAX_S = 366 * 24 * 3600.0


def limit_param(what: str) -> Any:
    """An optional count `>= 0`, with its OpenAPI description."""
    return Query(ge=0, description=what)


def seconds_param(what: str) -> Any:
    """An optional Unix time or duration in seconds, with its OpenAPI description."""
    return Query(allow_inf_nan=False, description=what)


def text_param(what: str) -> Any:
    """An optional string of at most 1000 characters, with its OpenAPI description."""
    return Query(max_length=1000, description=what)


SINCE = "only rows at or after this Unix time (seconds)"
PROCESSOR = "only this processor (its exact name)"
LogName = Annotated[
    str,
    PathParam(
        pattern=LOG_NAME_PATTERN,
        max_length=100,
        description="a log file's name as listed by /logs (e.g. `inboxd.log.1.gz`)",
    ),
]
Processor = Annotated[str | None, text_param(PROCESSOR)]
FileGlob = Annotated[
    str | None, text_param(f"only records whose input file matches {FILE_GLOB_HELP}")
]


@dataclass(frozen=True)
class ApiContext:
    """Everything the API reads: the live telemetry, the database, the logs folder."""

    telemetry: Telemetry
    db_path: Path
    logs_dir: Path
    token: str | None = None
    version: str = "0"
    host: str | None = None
    # The watched folder, for `inboxd_inbox_info` (tells instances apart in a fleet).
    inbox: str | None = None
    static_dir: Path = field(default=DEFAULT_STATIC_DIR)
    extra_health: Callable[[], dict[str, Any]] | None = None
    # tag -> processor name of the running pipeline: /traces finds a processor by name.
    pipeline_tags: Callable[[], Mapping[str, str]] | None = None


def clamp(limit: int | None, default: int | None, maximum: int) -> int | None:
    """`limit` (or `default` when absent) capped at `maximum`; None means no limit."""
    value = default if limit is None else limit
    return None if value is None else min(value, maximum)


def create_app(ctx: ApiContext) -> FastAPI:
    """Build the API for `ctx`; every piece of state lives in this closure or in ctx."""
    app = FastAPI(
        title="inboxd",
        version=ctx.version,
        docs_url=None,
        redoc_url=None,
        responses=COMMON_RESPONSES,
    )
    app.add_middleware(GuardMiddleware, token=ctx.token, host=ctx.host)
    _add_error_handlers(app)
    _add_live_routes(app, ctx)
    add_tap_route(app, ctx.telemetry.tap)
    _add_status_routes(app, ctx)
    add_sinks_route(app, ctx.telemetry)
    _add_history_routes(app, ctx)
    add_traces_route(app, ctx.telemetry, HistoryReader(ctx.db_path), ctx.pipeline_tags)
    _add_log_routes(app, ctx)
    _add_page_routes(app, ctx)
    add_docs_route(app, ctx.static_dir)
    finish_openapi(app, has_token=ctx.token is not None)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    async def invalid_name(_: Request, exc: Exception) -> Response:
        return json_response({"detail": str(exc)}, 400)

    async def not_found(_: Request, exc: Exception) -> Response:
        return json_response({"detail": str(exc)}, 404)

    async def unreadable(_: Request, exc: Exception) -> Response:
        return json_response({"detail": str(exc)}, 422)

    async def unavailable(_: Request, exc: Exception) -> Response:
        return json_response({"detail": str(exc)}, 503)

    app.add_exception_handler(InvalidLogName, invalid_name)
    app.add_exception_handler(LogNotFound, not_found)
    app.add_exception_handler(LogUnreadable, unreadable)
    app.add_exception_handler(HistoryUnavailable, unavailable)


def file_docs(telemetry: Telemetry, limit: int | None) -> list[dict[str, Any]]:
    """Every tracked file; with `limit`, the K most behind, then most recently read."""
    items = telemetry.files()
    wanted = clamp(limit, None, LIMIT_MAX)
    if wanted is not None:
        items = sorted(items, key=lambda f: (f.lag, f.updated), reverse=True)[:wanted]
    return [f.as_dict() for f in items]


def health_doc(ctx: ApiContext) -> dict[str, Any]:
    return web_health.health_doc(ctx.telemetry, ctx.version, ctx.extra_health)


def _add_live_routes(app: FastAPI, ctx: ApiContext) -> None:
    telemetry = ctx.telemetry

    @app.get("/stats", responses=ok(StatsDoc, "one key per processor"))
    async def stats() -> Response:
        return json_response(telemetry.stats())

    @app.get("/trace", responses=ok(list[list[str]], "paths of tags, newest last"))
    async def trace(
        limit: Annotated[
            int | None, limit_param("the newest K paths only (all kept when absent)")
        ] = None,
    ) -> Response:
        return json_response(telemetry.trace_paths(clamp(limit, None, LIMIT_MAX)))

    @app.get("/errors", responses=ok(list[ErrorDoc], "recent errors, newest last"))
    async def errors(
        limit: Annotated[
            int | None, limit_param("the newest K errors only (all kept when absent)")
        ] = None,
        processor: Processor = None,
        since: Annotated[float | None, seconds_param(SINCE)] = None,
    ) -> Response:
        records = telemetry.error_records()
        if processor is not None:
            records = [r for r in records if r.processor == processor]
        if since is not None:
            records = [r for r in records if r.ts >= since]
        wanted = clamp(limit, None, LIMIT_MAX)
        if wanted is not None:
            records = records[-wanted:] if wanted > 0 else []
        return json_response([r.as_dict() for r in records])


def _add_status_routes(app: FastAPI, ctx: ApiContext) -> None:
    telemetry = ctx.telemetry
    registry = build_registry(telemetry, version=ctx.version, inbox=ctx.inbox)

    @app.get("/files", responses=ok(list[FileDoc], "tracked input files"))
    async def files(
        limit: Annotated[
            int | None,
            limit_param("the K files most behind, then most recently read (all when absent)"),
        ] = None,
    ) -> Response:
        """Every tracked file; with `limit`, the K most behind, then most recently read."""
        return json_response(file_docs(telemetry, limit))

    @app.get(
        "/health",
        responses={**ok(HealthDoc, "ok or degraded"),
                   503: {"model": HealthDoc, "description": "failing"}},
    )  # fmt: skip
    async def health() -> Response:
        doc = health_doc(ctx)
        return json_response(doc, web_health.health_code(doc))

    @app.get("/live", responses=ok(LiveDoc, "stats, files, health and sinks in one"))
    async def live(
        files: Annotated[
            int | None,
            limit_param("include the K files most behind in `files` (none when absent or 0)"),
        ] = None,
    ) -> Response:
        """The dashboard's once-a-second refresh in one request: stats, files, health, sinks.

        One request instead of four: each one costs the engine a hand-over of the GIL.
        """
        doc = {
            "stats": telemetry.stats(),
            "files": file_docs(telemetry, files or 0),
            "health": health_doc(ctx),
            "sinks": telemetry.sinks.snapshot(),
            "outbox": {"lines": int(telemetry.counters().get("lines_out", 0))},
        }
        return json_response(doc)

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses=text("Prometheus text exposition"),
    )
    async def metrics() -> Response:
        return Response(render(registry), media_type=CONTENT_TYPE_LATEST)


def _add_history_routes(app: FastAPI, ctx: ApiContext) -> None:
    history = HistoryReader(ctx.db_path)
    _add_history_stats(app, history)
    _add_stored_records(app, history)


def _add_history_stats(app: FastAPI, history: HistoryReader) -> None:
    @app.get(
        "/history/stats",
        responses={**ok(list[MetricRow], "metric rows or buckets, oldest first"),
                   **problem(503, "the database cannot be read now")},
    )  # fmt: skip
    def history_stats(
        since: Annotated[
            float | None, seconds_param("rows at or after this Unix time (default: `until` - 24 h)")
        ] = None,
        until: Annotated[
            float | None, seconds_param("rows at or before this Unix time (default: now)")
        ] = None,
        processor: Processor = None,
        step: Annotated[
            float | None,
            Query(
                ge=1,
                le=STEP_MAX_S,
                allow_inf_nan=False,
                description="sum rows per processor into buckets of this many seconds; "
                "a bucket's `ts` is its start",
            ),
        ] = None,
        limit: Annotated[
            int | None,
            limit_param(
                f"the newest K rows or buckets only (default and at most {HISTORY_ROWS_MAX})"
            ),
        ] = None,
    ) -> Response:
        end = time.time() if until is None else until
        start = end - HISTORY_WINDOW_S if since is None else since
        rows = history.metrics(
            start,
            end,
            processor,
            step,
            limit=clamp(limit, HISTORY_ROWS_MAX, HISTORY_ROWS_MAX),
        )
        return json_response(rows)


def _add_stored_records(app: FastAPI, history: HistoryReader) -> None:
    @app.get(
        "/history/errors",
        responses={**ok(list[ErrorDoc], "stored errors, newest last"),
                   **problem(503, "the database cannot be read now")},
    )  # fmt: skip
    def history_errors(
        since: Annotated[float | None, seconds_param(SINCE)] = None,
        processor: Processor = None,
        limit: Annotated[
            int | None, limit_param(f"the newest K errors only (default 100, at most {LIMIT_MAX})")
        ] = None,
    ) -> Response:
        wanted = clamp(limit, 100, LIMIT_MAX) or 0
        return json_response(history.errors(since, processor, wanted))

    @app.get(
        "/deadletter",
        responses={**ok(list[DeadLetterDoc], "dead letters, newest last"),
                   **problem(503, "the database cannot be read now")},
    )  # fmt: skip
    def deadletter(
        limit: Annotated[
            int | None,
            limit_param(f"the newest K dead letters only (default 100, at most {LIMIT_MAX})"),
        ] = None,
        file: FileGlob = None,
    ) -> Response:
        wanted = clamp(limit, 100, LIMIT_MAX) or 0
        return json_response(history.deadletters(wanted, file or None))


def _add_log_routes(app: FastAPI, ctx: ApiContext) -> None:
    logs_dir = ctx.logs_dir

    @app.get("/logs", responses=ok(list[LogFileDoc], "current log first, then rotated"))
    def logs() -> Response:
        return json_response(list_logs(logs_dir))

    @app.get(
        "/logs/{name}",
        response_class=PlainTextResponse,
        responses={
            **text("the log file's text, decompressed"),
            **problem(400, "not a log file name"),
            **problem(404, "no such log file now"),
            422: {"model": ValidationProblem, "description": "bad parameter or corrupt archive"},
        },
    )
    def log_file(
        name: LogName,
        tail: Annotated[
            int | None, limit_param("the last N lines only (the whole file when absent)")
        ] = None,
    ) -> Response:
        text = read_log(logs_dir, name, clamp(tail, None, TAIL_LINES_MAX))
        return PlainTextResponse(text)


def _add_page_routes(app: FastAPI, ctx: ApiContext) -> None:
    static_dir = ctx.static_dir
    index = static_dir / "index.html"

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        try:
            body = index.read_bytes()
        except OSError:
            return PlainTextResponse("dashboard page not installed", status_code=503)
        return Response(body, media_type="text/html; charset=utf-8")

    if static_dir.is_dir():
        app.mount("/static", StaticFiles(directory=static_dir), name="static")
