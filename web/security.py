"""The API's guard: bearer-token check and security headers, as one pure ASGI middleware.

Pure ASGI (no BaseHTTPMiddleware) so that a request costs a header scan and a list
append, nothing that would show in the /stats p99.
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"object-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)

# The page and its assets load without the token so that the page can ask for it; every
# route that returns data needs it.
OPEN_PATHS = frozenset({"/", "/health"})
OPEN_PREFIXES = ("/static/",)

_UNAUTHORIZED_BODY = json.dumps({"detail": "missing or invalid bearer token"}).encode()


def is_open_path(path: str) -> bool:
    """True for the routes served without the token."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def is_authorized(headers: list[tuple[bytes, bytes]], token: bytes) -> bool:
    """True if an `Authorization: Bearer <token>` header carries exactly `token`."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), token):
                return True
    return False


class GuardMiddleware:
    """Refuse unauthenticated requests (401) when a token is set; add security headers."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if (
            self.token is not None
            and not is_open_path(scope["path"])
            and not is_authorized(scope["headers"], self.token)
        ):
            await _send_unauthorized(send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers.extend(SECURITY_HEADERS)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _send_unauthorized(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_UNAUTHORIZED_BODY)).encode()),
                (b"www-authenticate", b"Bearer"),
                *SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": _UNAUTHORIZED_BODY})
