"""The daemon's web server, built only when it starts.

Importing the web stack takes most of a second, and the first lines need not wait for
it: the daemon starts the engine first and builds the app afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from cli.settings import VERSION, Settings
from store.live.telemetry import Telemetry
from store.service import Service

if TYPE_CHECKING:  # uvicorn and FastAPI are imported when the server is built
    from web.server import WebServer


class DeferredWebServer(Service):
    """A Service that builds its WebServer at start() and passes the rest on to it.

    Thread-safety: as WebServer's; before start() there is nothing to stop or join.
    """

    def __init__(self, make: Callable[[], WebServer]) -> None:
        super().__init__("web", thread_name="inboxd-web")
        self._make = make
        self.server: WebServer | None = None

    def start(self) -> None:
        if self.server is None and not self.is_stopping:
            self.server = self._make()
            self.server.start()

    def on_stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def join(self, timeout: float | None = None) -> None:
        if self.server is not None:
            self.server.join(timeout)

    def is_alive(self) -> bool:
        return self.server is not None and self.server.is_alive()

    @property
    def error(self) -> BaseException | None:
        return self.server.error if self.server is not None else None

    @property
    def port(self) -> int:
        """The port listened on once started, else 0."""
        return self.server.port if self.server is not None else 0


def deferred_web_server(
    settings: Settings, telemetry: Telemetry, pipeline_tags: Callable[[], Mapping[str, str]]
) -> DeferredWebServer:
    """The dashboard and API of `settings`, over `telemetry`, built when started."""

    def make() -> WebServer:
        from web.app import ApiContext, create_app
        from web.server import WebServer

        context = ApiContext(
            telemetry=telemetry,
            db_path=settings.db_path,
            logs_dir=settings.logs_dir,
            token=settings.token,
            version=VERSION,
            host=settings.host,
            inbox=str(settings.inbox.resolve()),
            pipeline_tags=pipeline_tags,
        )
        return WebServer(create_app(context), host=settings.host, port=settings.port)

    return DeferredWebServer(make)
