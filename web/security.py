"""The API's guard: bearer-token check, Host check and security headers, as one pure ASGI
middleware.

Pure ASGI (no BaseHTTPMiddleware) so that a request costs a header scan and a list
append, nothing that would show in the /stats p99.

Without a token, a server on a loopback address is protected from DNS rebinding by its
Host header: a page on another site whose name is made to resolve to 127.0.0.1 sends its
own name as Host and is refused (403). Loopback IP literals, `localhost` and the
configured host name are accepted, with any port.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
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
OPEN_PATHS = frozenset({"/", "/health", "/docs"})
OPEN_PREFIXES = ("/static/",)

_UNAUTHORIZED_BODY = json.dumps({"detail": "missing or invalid bearer token"}).encode()
_BAD_HOST_BODY = json.dumps({"detail": "host not allowed"}).encode()

LOCAL_NAMES = frozenset({"localhost", "localhost."})


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


@functools.lru_cache(maxsize=64)
def is_loopback_ip(text: str) -> bool:
    """True for an IP literal (IPv6 with or without brackets) of a loopback address."""
    try:
        return ipaddress.ip_address(text.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(value: bytes) -> str:
    """The name part of a Host header value, lower case, without the port."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[: text.find("]") + 1] if "]" in text else text
    return text.partition(":")[0]


def is_allowed_host(headers: list[tuple[bytes, bytes]], names: frozenset[str]) -> bool:
    """True when the Host header names this machine's loopback, or is one of `names`."""
    for name, value in headers:
        if name == b"host":
            host = host_name(value)
            return host in LOCAL_NAMES or host in names or is_loopback_ip(host)
    return True  # HTTP/1.0 clients may omit it; browsers never do


class GuardMiddleware:
    """Refuse unauthenticated requests (401) when a token is set, and foreign Host headers
    (403) on loopback without a token; add security headers."""

    def __init__(self, app: ASGIApp, *, token: str | None, host: str | None = None) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.host_names = frozenset({host.lower()}) if host else frozenset()

    def is_rebinding(self, scope: Scope) -> bool:
        """A request to a loopback server, without a token, naming a foreign Host."""
        server = scope.get("server")
        if self.token is not None or not server or not is_loopback_ip(str(server[0])):
            return False
        return not is_allowed_host(scope["headers"], self.host_names)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.is_rebinding(scope):
            await _send_refusal(send, 403, _BAD_HOST_BODY)
            return
        if (
            self.token is not None
            and not is_open_path(scope["path"])
            and not is_authorized(scope["headers"], self.token)
        ):
            await _send_refusal(send, 401, _UNAUTHORIZED_BODY, (b"www-authenticate", b"Bearer"))
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers.extend(SECURITY_HEADERS)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _send_refusal(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra,
                *SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
