"""`GET /tap`: server-sent events of the lines flowing now.

Each event is one finished path: `data: {"path", "file", "line_no", "line"}`. A client
gets at most `rate` events a second; what it has no room for is skipped (an
`event: skipped` with the count says so), never queued without bound. The router traces
only while some client is connected.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.responses import StreamingResponse

from store.filematch import FILE_GLOB_HELP
from store.live.tap import TapHub

TICK_S = 0.1
HEARTBEAT_S = 15.0
RATE_DEFAULT = 100
RATE_MAX = 10_000

TAP_DESCRIPTION = (
    "Server-sent events of the lines flowing now. Each `data:` holds one JSON object "
    '`{"path": [...], "file": "...", "line_no": N, "line": "..."}`; an `event: skipped` '
    "tells how many lines went by while the client had no room. At most `rate` events a "
    "second; the stream ends after `limit` events or `seconds` seconds when given."
)


def event_bytes(
    path: tuple[str, ...], file: str | None, line_no: int | None, line: str | None
) -> bytes:
    doc = {"path": list(path), "file": file, "line_no": line_no, "line": line}
    return b"data: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n"


@dataclass(frozen=True)
class TapRequest:
    tag: str | None
    file: str | None
    rate: int
    limit: int | None
    seconds: float | None


async def stream_events(request: Request, hub: TapHub, ask: TapRequest) -> AsyncIterator[bytes]:
    """Subscribe, then drain every tick, at most `rate` a second, until the client leaves.

    The subscription is made here, not in the handler, so that it is always undone: the
    `finally` runs however the stream ends (end of limit, disconnect, server shutdown).
    """
    subscriber = hub.subscribe(tag=ask.tag, file_glob=ask.file, capacity=ask.rate)
    rate, limit, seconds = ask.rate, ask.limit, ask.seconds
    sent = 0
    started = last_write = last_tick = time.monotonic()
    allowance = 0.0  # a token bucket: `rate` events a second, at most a second's worth
    try:
        yield b": tap connected\n\n"
        while True:
            now = time.monotonic()
            if hub.closed or (seconds is not None and now - started >= seconds):
                return
            allowance = min(float(rate), allowance + (now - last_tick) * rate)
            last_tick = now
            want = int(allowance) if limit is None else min(int(allowance), limit - sent)
            records, skipped = hub.take(subscriber, want)
            allowance -= len(records)
            if skipped:
                yield f"event: skipped\ndata: {skipped}\n\n".encode()
            for r in records:
                yield event_bytes(r.path, r.file, r.line_no, r.line)
            sent += len(records)
            if limit is not None and sent >= limit:
                return
            if records or skipped:
                last_write = now
            elif now - last_write >= HEARTBEAT_S:
                yield b": keep-alive\n\n"
                last_write = now
            if await request.is_disconnected():
                return
            await asyncio.sleep(TICK_S)
    finally:
        hub.unsubscribe(subscriber)


def add_tap_route(app: FastAPI, hub: TapHub) -> None:
    app.state.on_stop = [*getattr(app.state, "on_stop", []), hub.close]

    @app.get(
        "/tap",
        response_class=StreamingResponse,
        description=TAP_DESCRIPTION,
        responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
    )
    async def tap(
        request: Request,
        tag: Annotated[
            str | None, Query(max_length=1000, description="only lines whose path has this tag")
        ] = None,
        file: Annotated[
            str | None,
            Query(
                max_length=1000, description=f"only lines whose input file matches {FILE_GLOB_HELP}"
            ),
        ] = None,
        rate: Annotated[
            int,
            Query(
                ge=1,
                le=RATE_MAX,
                description="at most this many events a second; the rest are skipped",
            ),
        ] = RATE_DEFAULT,
        limit: Annotated[
            int | None, Query(ge=1, description="end the stream after this many events")
        ] = None,
        seconds: Annotated[
            float | None,
            Query(
                gt=0,
                le=86400,
                allow_inf_nan=False,
                description="end the stream after this many seconds",
            ),
        ] = None,
    ) -> StreamingResponse:
        ask = TapRequest(tag, file, rate, limit, seconds)
        body = stream_events(request, hub, ask)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(body, media_type="text/event-stream", headers=headers)
