"""Response schemas of the API, for `/openapi.json` and `/docs` only.

Handlers serialise plain dicts to JSON bytes themselves (no pydantic on the request
path, which shares the GIL with the engine); these models only describe what they send,
and the schema tests check that every response matches. Extra keys are allowed
everywhere, so that a record may grow a field without breaking a client.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class ProcessorStats(_Doc):
    count: int = Field(description="lines handed to the processor")
    time: float = Field(description="seconds spent inside it, all attempts")
    errors: int = Field(description="exceptions it raised, one per failed attempt")
    retries: int = Field(description="attempts after the first")


class StatsDoc(RootModel[dict[str, ProcessorStats]]):
    """One key per processor."""


class TraceDoc(_Doc):
    time: float
    path: list[str]
    file: str | None
    line_no: int | None
    line: str | None


class ErrorDoc(_Doc):
    processor: str
    message: str = Field(description='"<ExceptionType>: <text>"')
    time: float
    file: str | None = None
    line_no: int | None = None
    line: str | None = None
    attempt: int | None = Field(None, description="1 for the first try")
    traceback: str | None = Field(None, description="the innermost frames")


class FileDoc(_Doc):
    path: str
    size: int
    offset: int
    state: str = Field(
        description="active, skipping (inside an over-long line), gone (deleted, read to its "
        "end), error (cannot be read now: see `reason`) or excluded (kept unread by "
        "`[daemon] include`/`exclude`: see `rule`)"
    )
    outbox: str = Field(description='its outbox file; "" for an excluded file')
    lines: int
    updated: float = Field(description="last read; when first seen for an excluded file")
    lag: int = Field(description="bytes not read yet (0 for an excluded file)")
    reason: str | None = Field(None, description="why it is in error or excluded")
    rule: str | None = Field(
        None, description='the rule that excludes it: `exclude "*.gz"` or `include (...)`'
    )


class CheckDoc(_Doc):
    status: str
    reason: str | None = None


class HealthDoc(_Doc):
    status: Literal["ok", "degraded", "failing"]
    uptime: float
    version: str
    tracing: bool
    checks: dict[str, CheckDoc] = Field(default_factory=dict)


class SinkDoc(_Doc):
    name: str = Field(description="the sink's name in `[sinks.NAME]`, its tag")
    type: str = Field(description="file, sqlite, http, stdout or nats")
    target: str = Field(description="where its lines go, in one line")
    lines: int = Field(description="lines delivered since start")
    errors: int = Field(description="failed deliveries since start")
    pending: int = Field(description="lines accepted and not delivered yet (http: spool)")
    status: Literal["ok", "degraded"]
    reason: str | None = Field(None, description="why it is degraded; null when ok")
    since: float = Field(description="when it last became degraded; 0 if it never was")
    last_delivery: float | None = Field(None, description="time of the last delivery")


class OutboxDoc(_Doc):
    lines: int = Field(description="lines written to the outbox (the built-in `end`)")


class LiveDoc(_Doc):
    stats: dict[str, ProcessorStats]
    files: list[FileDoc]
    health: HealthDoc
    sinks: list[SinkDoc] = Field(default_factory=list, description="as `GET /sinks`")
    outbox: OutboxDoc | None = None


class MetricRow(_Doc):
    ts: float = Field(description="flush time, or the start of the bucket with `step`")
    processor: str
    count: int
    time: float
    errors: int
    retries: int


class DeadLetterDoc(_Doc):
    id: int | None = None
    ts: float
    file: str | None
    line_no: int | None
    tag: str
    processor: str
    message: str
    line: str | None


class LogFileDoc(_Doc):
    name: str
    size: int
    modified: float


class Problem(_Doc):
    detail: str


class ValidationProblem(_Doc):
    detail: str | list[dict[str, Any]]


def ok(model: Any, description: str = "OK") -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that answers `model` as JSON."""
    return {200: {"model": model, "description": description}}


def problem(code: int, description: str) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem, "description": description}}


def text(description: str, media_type: str = "text/plain") -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that answers text, not JSON."""
    content = {media_type: {"schema": {"type": "string"}}}
    return {200: {"description": description, "content": content}}


# Answers any route may give: a token was set and not sent, or a foreign Host header.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    **problem(401, "a token is set and the request did not carry it"),
    **problem(403, "the Host header names another site (DNS rebinding)"),
}
