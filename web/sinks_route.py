"""`GET /sinks`: what each configured sink has done, and its state.

One row per `[sinks.NAME]` table, in the order written; the built-in `end` outbox is
not one of them (its figures are `inboxd_lines_out_total` and the `disk` check). Served
from the SinkBoard snapshot, the same figures as the `inboxd_sink_*` metrics.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response

from store.live.telemetry import Telemetry
from web.responses import json_response
from web.schemas import SinkDoc, ok


def add_sinks_route(app: FastAPI, telemetry: Telemetry) -> None:
    @app.get("/sinks", responses=ok(list[SinkDoc], "one row per configured sink"))
    async def sinks() -> Response:
        """Lines delivered, failed deliveries and lines pending per sink, and its state."""
        return json_response(telemetry.sinks.snapshot())
