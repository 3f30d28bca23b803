"""JSON answers as bytes, without FastAPI's validation and encoding layers."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response


def json_response(doc: Any, status_code: int = 200) -> Response:
    """Compact JSON bytes; the handlers share the GIL with the engine, so no pydantic."""
    body = json.dumps(doc, separators=(",", ":"), default=str)
    return Response(body.encode(), status_code=status_code, media_type="application/json")
