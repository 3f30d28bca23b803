"""`WebServer`: uvicorn serving an ASGI app from a background thread.

The listening socket is bound in `start()` on the caller's thread, so a port in use is an
InboxdError there and then, not a log line from another thread. uvicorn runs with its
own asyncio loop in the thread; it installs no signal handlers (only the main thread
owns signals) and configures no logging beyond the level of its own loggers.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from processors.errors import InboxdError
from store.service import Service
from web.limits import capped_protocol, connection_limit

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
# How long join() waits once it forced the exit.
FORCED_JOIN_S = 1.0
GRACEFUL_SHUTDOWN_S = 3


class WebServerError(InboxdError):
    """The web server could not bind its address or did not come up."""


class _Server(uvicorn.Server):
    """uvicorn.Server that reports the end of its start-up through an Event."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0 picks a free one)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise WebServerError(f"cannot resolve web address {host!r}: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise WebServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


class WebServer(Service):
    """Owns the uvicorn thread (a Service); `start()` returns once requests are accepted.

    stop() asks uvicorn to finish its requests (endless responses such as /tap end at
    once); join(timeout) waits, and forces the exit when the graceful wait ran out.
    Thread-safety: start() and join() by the owner; stop() from any thread.
    """

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 8000) -> None:
        super().__init__("web", thread_name="inboxd-web")
        self.host = host
        self._requested_port = port
        self._app = app
        self._server: _Server | None = None
        self._socket: socket.socket | None = None
        self._bound_port: int | None = None
        self._address: tuple[Any, ...] = (host, port)

    @property
    def port(self) -> int:
        """The port listened on (the real one when 0 was asked), else the one asked."""
        return self._requested_port if self._bound_port is None else self._bound_port

    @property
    def address(self) -> tuple[Any, ...]:
        """The socket address listened on, as `socket.getsockname()` gives it."""
        return self._address

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Bind, start the thread, and return once requests are being accepted.

        A second start() is a no-op. Raises WebServerError when the address cannot be
        bound or the server does not come up within `timeout`.
        """
        if self.is_started or self.is_stopping:
            return
        sock = bind_socket(self.host, self._requested_port)
        self._address = tuple(sock.getsockname())
        self._bound_port = int(self._address[1])
        server = _Server(uvicorn_config(self._app))
        self._server, self._socket = server, sock
        super().start()
        deadline = time.monotonic() + timeout
        while not server.ready.wait(0.02):
            if not self.is_alive() or time.monotonic() > deadline:
                break
        if not server.ready.is_set():
            self.stop()
            self.join(STOP_TIMEOUT_S)
            reason = f": {self.error!r}" if self.error is not None else ""
            raise WebServerError(f"web server did not start on {self.host}:{self.port}{reason}")

    def run(self) -> None:
        server, sock = self._server, self._socket
        assert server is not None and sock is not None  # set by start() before the thread
        try:
            server.run(sockets=[sock])
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def on_error(self, exc: BaseException) -> None:
        """Kept in `error`; start() reports it when the server never came up."""

    def on_stop(self) -> None:
        server = self._server
        if server is None:
            return
        # Endless responses (the /tap stream) end now rather than at the graceful timeout.
        for hook in getattr(getattr(self._app, "state", None), "on_stop", ()):
            hook()
        server.should_exit = True

    def join(self, timeout: float | None = STOP_TIMEOUT_S) -> None:
        """Wait up to `timeout` for the thread; past it, after stop(), force the exit."""
        super().join(timeout)
        server = self._server
        if server is not None and self.is_stopping and self.is_alive():
            server.force_exit = True
            super().join(FORCED_JOIN_S)


def uvicorn_config(app: ASGIApp) -> uvicorn.Config:
    """How inboxd runs uvicorn: no logging set-up, no lifespan, capped connections."""
    return uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # uvloop and httptools (C) when installed: the web thread shares the GIL
        # with the engine, so less Python per request is more ingest.
        loop="auto",
        http=capped_protocol(connection_limit()),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
    )
