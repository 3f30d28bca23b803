"""The /health document: named checks set by the daemon's parts, and the worst of them.

`ok` and `degraded` answer HTTP 200 (the daemon works, or waits on the world and will
resume by itself); `failing` answers 503 (the engine is stalled or dead).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from store.live.health import FAILING
from store.live.telemetry import Telemetry
from store.records import describe


def health_doc(
    telemetry: Telemetry, version: str, extra: Callable[[], dict[str, Any]] | None = None
) -> dict[str, Any]:
    checks = telemetry.health.snapshot()
    doc: dict[str, Any] = {
        "status": telemetry.health.overall(checks),
        "uptime": round(time.time() - telemetry.started, 3),
        "version": version,
        "tracing": telemetry.trace_enabled,
        "checks": checks,
    }
    if extra is not None:
        try:
            doc.update(extra())
        except Exception as exc:
            doc["status"] = FAILING
            doc["error"] = describe(exc)
    return doc


def health_code(doc: dict[str, Any]) -> int:
    return 503 if doc["status"] == FAILING else 200
