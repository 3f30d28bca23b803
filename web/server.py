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
from web.limits import capped_protocol, connection_limit

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
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


class WebServer:
    """Owns the uvicorn thread: `start()`, idempotent `stop()`, `join(timeout)`."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 8000) -> None:
        self.host = host
        self._requested_port = port
        self._app = app
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._bound_port: int | None = None
        self._address: tuple[Any, ...] = (host, port)
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        """The port listened on (the real one when 0 was asked), else the one asked."""
        return self._requested_port if self._bound_port is None else self._bound_port

    @property
    def address(self) -> tuple[Any, ...]:
        """The socket address listened on, as `socket.getsockname()` gives it."""
        return self._address

    @property
    def error(self) -> BaseException | None:
        """What ended the server thread, if it ended by an exception."""
        return self._error

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Bind, start the thread, and return once requests are being accepted."""
        with self._lock:
            if self._thread is not None:
                raise WebServerError("web server already started")
            sock = bind_socket(self.host, self._requested_port)
            self._address = tuple(sock.getsockname())
            self._bound_port = int(self._address[1])
            config = uvicorn.Config(
                self._app,
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
            server = _Server(config)
            self._server = server
            self._thread = threading.Thread(
                target=self._run, args=(server, sock), name="inboxd-web", daemon=True
            )
            self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.ready.wait(0.02):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                break
        if not server.ready.is_set():
            self.stop()
            reason = f": {self._error!r}" if self._error is not None else ""
            raise WebServerError(f"web server did not start on {self.host}:{self.port}{reason}")

    def _run(self, server: _Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:
            self._error = exc
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Ask the server to finish its requests and exit; wait up to `timeout`."""
        server = self._server
        if server is None:
            return
        # Endless responses (the /tap stream) end now rather than at the graceful timeout.
        for hook in getattr(getattr(self._app, "state", None), "on_stop", ()):
            hook()
        server.should_exit = True
        self.join(timeout)
        if self.is_alive():
            server.force_exit = True
            self.join(1.0)

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def is_alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()
