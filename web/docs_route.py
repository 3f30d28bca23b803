"""`GET /docs`: the API documentation, served from files shipped with the package.

Swagger UI (vendored in `static/swagger-ui/`) renders `/openapi.json`; nothing is
fetched from another site, and the page runs under the same CSP as the dashboard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response

BEARER_SCHEME = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
# Paths served without the token (besides the page and its assets).
OPEN_API_PATHS = frozenset({"/health"})


def add_docs_route(app: FastAPI, static_dir: Path) -> None:
    page = static_dir / "docs.html"

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        try:
            body = page.read_bytes()
        except OSError:
            return PlainTextResponse("API documentation page not installed", status_code=503)
        return Response(body, media_type="text/html; charset=utf-8")


def finish_openapi(app: FastAPI, *, has_token: bool) -> None:
    """Complete the generated schema once, on its first request.

    Problems (4xx/5xx) are JSON even on routes that answer text (FastAPI documents them
    in the route's media type), and the bearer token is declared when the API requires
    one, and only then: a schema that claims auth the server does not check misleads.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path, item in schema["paths"].items():
                for operation in item.values():
                    _json_problems(operation)
                    if has_token and path not in OPEN_API_PATHS:
                        operation["security"] = [{"bearerAuth": []}]
            if has_token:
                schema.setdefault("components", {})["securitySchemes"] = BEARER_SCHEME
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _json_problems(operation: dict[str, Any]) -> None:
    for code, response in operation.get("responses", {}).items():
        content = response.get("content", {})
        if not code.startswith("2") and "text/plain" in content:
            content["application/json"] = content.pop("text/plain")
