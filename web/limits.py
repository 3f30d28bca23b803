"""Bounds on API connections, so that clients can never starve the engine of descriptors.

uvicorn accepts every connection and keeps one that never sends a request open for
ever. The protocol class made here closes a connection at once when too many are open,
and closes one that has sent nothing within `IDLE_FIRST_REQUEST_S`.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

MAX_CONNECTIONS = 512
IDLE_FIRST_REQUEST_S = 10.0


def connection_limit() -> int:
    """At most MAX_CONNECTIONS, and at most a quarter of the open-files limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(8, min(MAX_CONNECTIONS, soft // 4))


def capped_protocol(limit: int, idle_s: float = IDLE_FIRST_REQUEST_S) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol ("auto") with a connection cap and a first-request timeout."""
    base: Any = import_from_string(HTTP_PROTOCOLS["auto"])

    class CappedProtocol(base):  # type: ignore[misc]
        def connection_made(self, transport: asyncio.Transport) -> None:
            if len(self.connections) >= limit:
                transport.abort()
                return
            super().connection_made(transport)
            self._inboxd_spoke = False
            self._inboxd_idle = self.loop.call_later(idle_s, self._inboxd_drop_silent)

        def data_received(self, data: bytes) -> None:
            self._inboxd_spoke = True
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            idle = getattr(self, "_inboxd_idle", None)
            if idle is None:  # refused in connection_made: never counted
                return
            idle.cancel()
            super().connection_lost(exc)

        def _inboxd_drop_silent(self) -> None:
            if not self._inboxd_spoke and not self.transport.is_closing():
                self.transport.close()

    return CappedProtocol
