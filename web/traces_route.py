"""`GET /traces`: detailed traces, the in-memory ring for recent ones, SQLite for older ones.

The ring answers alone when it holds enough matches (no SQLite on the common path);
otherwise the stored traces older than the ring's oldest record fill in, so that a
search reaches back past the last few seconds of a busy daemon.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from store.filematch import FILE_GLOB_HELP, file_matches
from store.history import HistoryReader, TraceSearch
from store.live.telemetry import Telemetry
from store.records import TraceRecord
from web.responses import json_response
from web.schemas import TraceDoc, ok, problem

TRACES_DEFAULT = 1000
# tag -> the name of its processor, for the pipeline running now.
TagMap = Callable[[], Mapping[str, str]]


def find_traces(records: list[TraceRecord], search: TraceSearch) -> list[dict[str, Any]]:
    """The newest `search.limit` records matching it, oldest first."""
    needle = search.q.casefold() if search.q else None
    tags, file = search.tags, search.file
    found: list[dict[str, Any]] = []
    for record in reversed(records):
        if len(found) >= search.limit:
            break
        if search.until is not None and record.ts > search.until:
            continue
        if search.since is not None and record.ts < search.since:
            break
        if file is not None and not file_matches(file, record.file):
            continue
        if needle and (record.line is None or needle not in record.line.casefold()):
            continue
        if tags and not any(tag in record.path for tag in tags):
            continue
        found.append(record.as_dict())
    found.reverse()
    return found


def search_traces(
    records: list[TraceRecord], history: HistoryReader, search: TraceSearch
) -> list[dict[str, Any]]:
    """Ring matches, preceded by stored ones older than the ring when they are too few.

    A batch shares one timestamp, and the ring may hold only the end of the oldest one:
    stored rows up to and including that time are taken, less those the ring holds.
    """
    recent = find_traces(records, search)
    missing = search.limit - len(recent)
    if missing <= 0:
        return recent
    up_to = records[0].ts if records else None
    held = {_key(r.ts, r.file, r.line_no, r.path) for r in records if r.ts == up_to}
    stored = history.traces(replace(search, limit=missing + len(held)), up_to)
    older = [r for r in stored if _key(r["time"], r["file"], r["line_no"], r["path"]) not in held]
    return [*older[-missing:], *recent]


def _key(ts: float, file: str | None, line_no: int | None, path: Any) -> tuple[Any, ...]:
    return (ts, file, line_no, tuple(path))


def tags_for(text: str | None, pipeline_tags: TagMap | None) -> tuple[str, ...]:
    """`text` as a tag, plus the tags whose processor is named `text`."""
    if not text:
        return ()
    named = [t for t, name in (pipeline_tags() if pipeline_tags else {}).items() if name == text]
    return tuple(dict.fromkeys([text, *named]))


# The query parameters of /traces, each with its description for /openapi.json.
TracesLimit = Annotated[
    int | None,
    Query(ge=0, description=f"the newest K traces only (default {TRACES_DEFAULT}, at most 10000)"),
]
TagParam = Annotated[
    str | None, Query(max_length=1000, description="a tag in the path, or a processor's name")
]
FileParam = Annotated[
    str | None,
    Query(max_length=1000, description=f"only traces whose input file matches {FILE_GLOB_HELP}"),
]
TextParam = Annotated[
    str | None,
    Query(
        max_length=1000, description="only traces whose line contains this text (case-insensitive)"
    ),
]
SinceParam = Annotated[
    float | None,
    Query(allow_inf_nan=False, description="only traces at or after this Unix time (seconds)"),
]
UntilParam = Annotated[
    float | None,
    Query(allow_inf_nan=False, description="only traces at or before this Unix time (seconds)"),
]


def add_traces_route(
    app: FastAPI,
    telemetry: Telemetry,
    history: HistoryReader,
    pipeline_tags: TagMap | None = None,
) -> None:
    @app.get(
        "/traces",
        responses={**ok(list[TraceDoc], "detailed traces, newest last"),
                   **problem(503, "the database cannot be read now")},
    )  # fmt: skip
    async def traces(
        limit: TracesLimit = None,
        tag: TagParam = None,
        file: FileParam = None,
        q: TextParam = None,
        since: SinceParam = None,
        until: UntilParam = None,
    ) -> Response:
        wanted = TRACES_DEFAULT if limit is None else min(limit, 10_000)
        tags = tags_for(tag, pipeline_tags)
        search = TraceSearch(wanted, tags, file or None, q or None, since, until)
        records = telemetry.trace_records()
        found = find_traces(records, search)
        if len(found) < wanted:
            found = await run_in_threadpool(search_traces, records, history, search)
        return json_response(found)
