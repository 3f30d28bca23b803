"""inboxd: watch an inbox folder and route every new line through a graph of processors.

`main()` only parses options and config, builds the parts, starts them, waits for a
signal and stops them in reverse order.
"""

from __future__ import annotations

import sys

from watcher.workers.forkserver import ensure_server, start_early

# Worker processes fork from a server process. Started here, before the imports below
# (when this is the daemon and its settings ask for workers), its own start overlaps
# them on the other core instead of delaying the first routed chunk.
start_early(sys.argv[0], sys.argv[1:])

import contextlib
import dataclasses
import gc
import importlib
import json
import logging
import resource
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Protocol

from cli.config import load_config, router_spec
from cli.logs import setup_logging
from cli.settings import VERSION, Settings, settings_from
from processors import factory
from processors.errors import ConfigError, InboxdError
from processors.pipeline import Pipeline
from processors.router import Router
from sinks.registry import check_sinks
from store.flush import Flusher, flush_once
from store.live.health import DEGRADED
from store.live.sinkboard import SinkBoard
from store.live.tap import TapHub
from store.live.telemetry import Telemetry
from store.lock import FolderLock, lock_folders
from store.statemark import check_state
from watcher.dirty import DirtySet
from watcher.engine import Engine
from watcher.reading.faults import SharedFault
from watcher.sdnotify import Notifier
from web.startup import announce

if TYPE_CHECKING:
    from sinks.senders import Senders
    from watcher.observer import InboxWatcher
    from web.server import WebServer

log = logging.getLogger("inboxd")


class Worker(Protocol):
    def is_alive(self) -> bool: ...


# The web thread shares the GIL with the engine: a 1 ms switch interval (Python's default
# is 5 ms) keeps API latency low while the engine runs flat out.
SWITCH_INTERVAL_S = 0.001
JOIN_TIMEOUT_S = 15.0
SUPERVISE_S = 0.2
EXIT_USAGE = 2
EXIT_FAILURE = 1
# The soft limit of open files the daemon raises itself to (within the hard limit).
OPEN_FILES_WANTED = 65536
# `inboxd check|test|tap ...`: the module whose main(argv) runs each subcommand.
SUBCOMMANDS = {
    "check": "cli.check",
    "test": "cli.pipetest",
    "tap": "cli.tap",
}


def load(argv: list[str] | None) -> tuple[Settings, Pipeline]:
    """Validated settings and pipeline, before any thread starts (as `inboxd check`)."""
    return load_config(argv)


def reload_pipeline(argv: list[str] | None, running: Settings) -> tuple[Pipeline, Settings]:
    """Read the config file (and the processor modules) again for SIGHUP.

    Returns the pipeline and the settings read now (worker processes load the table
    themselves). Raises ConfigError when the new config does not load; the caller keeps
    the old one.
    """
    fresh = settings_from(argv)
    # Sinks take effect at the next start: the running ones are what tags may not name.
    spec = router_spec(dataclasses.replace(running, config=fresh.config, pipeline=fresh.pipeline))
    return spec.load(reload=True), fresh


def ignored_on_reload(running: Settings, fresh: Settings) -> list[str]:
    """The `[daemon]` keys whose new values take effect only at the next start."""
    return [
        f.name
        for f in dataclasses.fields(Settings)
        if f.name != "pipeline" and getattr(running, f.name) != getattr(fresh, f.name)
    ]


def build_router(settings: Settings, pipeline: Pipeline, tap: TapHub | None = None) -> Router:
    """The engine's Router of `pipeline`, built as workers and `inboxd test` build theirs."""
    return factory.build_router(router_spec(settings), pipeline, tap=tap)


def start_logging(settings: Settings) -> Callable[[], None]:
    try:
        return setup_logging(
            settings.logs_dir,
            level=settings.log_level,
            max_bytes=settings.log_max_bytes,
            backups=settings.log_backups,
        )
    except OSError as exc:
        raise ConfigError(f"{settings.logs_dir}: log folder cannot be written: {exc}") from None


def raise_open_files_limit() -> None:
    """Open files up to the hard limit: API clients must never starve the inbox of them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES_WANTED)
    if soft != resource.RLIM_INFINITY and soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def run_once(settings: Settings, pipeline: Pipeline, telemetry: Telemetry) -> int:
    senders = make_senders(settings, telemetry)
    engine = Engine(settings=settings, router=build_router(settings, pipeline), telemetry=telemetry,
                    on_spool=senders.nudge if senders else None)  # fmt: skip
    senders.start()
    try:
        engine.run_once()
        undelivered = senders.wait_delivered()
    except SharedFault as fault:
        print(f"inboxd: stopped, nothing lost (run again): {fault.reason}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        senders.stop()
        senders.join(JOIN_TIMEOUT_S)
    flush_once(telemetry, settings.db_path, settings.retention_days)
    if undelivered:
        print(f"inboxd: sink {', '.join(undelivered)} failing; its lines stay spooled for the "
              "next run", file=sys.stderr)  # fmt: skip
        print(json.dumps(telemetry.stats()))
        return EXIT_FAILURE
    print(json.dumps(telemetry.stats()))
    return 0


class WebPart:
    """The web server, built only once the engine runs: importing the web stack takes
    most of a second, and the first lines need not wait for it."""

    def __init__(self, make: Callable[[], WebServer]) -> None:
        self._make = make
        self.server: WebServer | None = None

    def start(self) -> None:
        self.server = self._make()
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def join(self, timeout: float | None = None) -> None:
        if self.server is not None:
            self.server.join(timeout)

    def is_alive(self) -> bool:
        return self.server is not None and self.server.is_alive()

    @property
    def port(self) -> int:
        return self.server.port if self.server is not None else 0


@dataclass(frozen=True)
class Parts:
    """The daemon's workers, each owning its thread."""

    notifier: Notifier
    engine: Engine
    watcher: InboxWatcher
    flusher: Flusher
    web: WebPart
    senders: Senders

    def workers(self) -> dict[str, Worker]:
        return {"engine": self.engine, "watcher": self.watcher, "flusher": self.flusher,
                "web": self.web, "sink senders": self.senders}  # fmt: skip


def make_senders(settings: Settings, telemetry: Telemetry) -> Senders:
    from processors.batch import Keeper
    from sinks.base import SenderContext
    from sinks.senders import Senders  # clients and threads only with spooled sinks

    keeper = Keeper(settings.keep_lines)
    ctx = SenderContext(telemetry.sinks, settings.db_path, VERSION,
                        keep_line=lambda line: keeper.line(line, whole=True))  # fmt: skip
    return Senders(settings.sinks, ctx)


def build_parts(settings: Settings, pipeline: Pipeline, telemetry: Telemetry) -> Parts:
    """Build every worker; nothing starts yet (the web server is built when started)."""
    # The watcher is imported here so that --once starts without it.
    from watcher.observer import InboxWatcher

    notifier = Notifier()
    dirty = DirtySet()
    router = build_router(settings, pipeline, telemetry.tap)
    senders = make_senders(settings, telemetry)
    engine = Engine(
        settings=settings, router=router, telemetry=telemetry, dirty=dirty, notifier=notifier,
        on_spool=senders.nudge if senders else None,
    )  # fmt: skip
    flusher = Flusher(
        telemetry,
        settings.db_path,
        interval_s=settings.flush_interval,
        retention_days=settings.retention_days,
    )

    def make_web() -> WebServer:
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
            pipeline_tags=lambda: {t: n.name for t, n in engine.router.pipeline.nodes.items()},
        )
        return WebServer(create_app(context), host=settings.host, port=settings.port)

    watcher = InboxWatcher(settings.inbox.resolve(), dirty)
    return Parts(notifier, engine, watcher, flusher, WebPart(make_web), senders)


def start_parts(parts: Parts, settings: Settings) -> None:
    """Watch first (no event is missed), then read, flush, serve; READY=1 last."""
    parts.watcher.start()
    parts.senders.start()
    parts.engine.start()
    parts.engine.started.wait()
    if parts.engine.error is not None:
        raise InboxdError(f"engine failed to start: {parts.engine.error}")
    parts.flusher.start()
    parts.web.start()
    log.info(
        "inboxd started",
        extra={"event": "start", "inbox": str(settings.inbox), "port": parts.web.port},
    )
    announce(settings, parts.web.port)
    parts.notifier.ready()


def stop_parts(parts: Parts) -> None:
    """Stop in reverse order: no new events, finish and commit the batch, then the rest."""
    parts.notifier.stopping()
    parts.watcher.stop()
    parts.engine.stop()
    parts.engine.join(JOIN_TIMEOUT_S)
    parts.senders.stop()
    parts.senders.join(JOIN_TIMEOUT_S)
    parts.web.stop()
    parts.web.join(JOIN_TIMEOUT_S)
    parts.flusher.stop()
    parts.flusher.join(JOIN_TIMEOUT_S)


def run_live(
    settings: Settings, pipeline: Pipeline, telemetry: Telemetry, argv: list[str] | None
) -> int:
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    stop, reload = threading.Event(), threading.Event()
    parts = build_parts(settings, pipeline, telemetry)
    install_signals(stop, reload)
    # Everything built so far lives as long as the process: keep it out of the
    # collector's generations so that full collections stay short.
    gc.freeze()
    code = 0
    try:
        start_parts(parts, settings)
        code = supervise(stop, reload, settings, argv, parts)
    except InboxdError as exc:
        log.error("inboxd cannot run: %s", exc, extra={"event": "fatal"})
        print(f"inboxd: {exc}", file=sys.stderr)
        code = EXIT_FAILURE
    finally:
        stop_parts(parts)
        log.info("inboxd stopped", extra={"event": "stop", "exit_code": code})
    return code


def supervise(
    stop: threading.Event,
    reload: threading.Event,
    settings: Settings,
    argv: list[str] | None,
    parts: Parts,
) -> int:
    """Wait for a stop signal; reload on SIGHUP; fail fast when a worker thread dies."""
    while not stop.wait(SUPERVISE_S):
        parts.watcher.check()
        if parts.watcher.problem is None:
            parts.engine.telemetry.health.ok("watcher")
        else:
            parts.engine.telemetry.health.set("watcher", DEGRADED, parts.watcher.problem)
        # WATCHDOG=1 while the engine progresses, however slowly; none while it is
        # stalled, so systemd restarts a hung engine and never a slow one.
        if not parts.engine.watch(time.monotonic()):
            parts.notifier.watchdog()
        if reload.is_set():
            reload.clear()
            try:
                pipeline, fresh = reload_pipeline(argv, settings)
                parts.engine.set_router(
                    build_router(settings, pipeline, parts.engine.telemetry.tap),
                    dataclasses.replace(settings, pipeline=fresh.pipeline),
                )
                ignored = ignored_on_reload(settings, fresh)
                if ignored:
                    log.warning("reload applies [pipeline] only; restart for: %s",
                                ", ".join(ignored),
                                extra={"event": "reload_ignored", "keys": ignored})  # fmt: skip
            except ConfigError as exc:
                log.error("reload refused, keeping the running pipeline: %s", exc,
                          extra={"event": "reload_failed"})  # fmt: skip
        for name, part in parts.workers().items():
            if not part.is_alive():
                log.error("%s thread died; exiting so that the service restarts", name,
                          extra={"event": "thread_died", "worker": name})  # fmt: skip
                return EXIT_FAILURE
    return 0


def install_signals(stop: threading.Event, reload: threading.Event) -> None:
    """Signal handlers only set events (main thread only)."""

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        reload.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[args[0]])
        return int(module.main(args[1:]))
    locks: list[FolderLock] = []
    try:
        settings, pipeline = load(argv)
        if not settings.once:
            raise_open_files_limit()
        # Held until the process ends (the kernel lets go at kill -9 too).
        locks = lock_folders(settings.state_dir, settings.outbox)
        check_state(
            settings.inbox,
            settings.outbox,
            settings.db_path,
            allow_redelivery=settings.allow_redelivery,
        )
        for warning in check_sinks(settings.sinks, settings.state_dir, strict=True):
            print(f"inboxd: warning: {warning}", file=sys.stderr)
        if settings.workers > 1:
            ensure_server()
        teardown = start_logging(settings)
    except ConfigError as exc:
        for lock in locks:
            lock.release()
        print(f"inboxd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    telemetry = Telemetry(
        trace_enabled=settings.trace,
        trace_size=settings.trace_size,
        errors_size=settings.errors_size,
    )
    telemetry.sinks = SinkBoard(settings.sinks, telemetry.health, outbox=str(settings.outbox),
                                state_dir=str(settings.state_dir))  # fmt: skip
    try:
        if settings.once:
            return run_once(settings, pipeline, telemetry)
        return run_live(settings, pipeline, telemetry, argv)
    finally:
        teardown()
        for lock in locks:
            lock.release()


if __name__ == "__main__":
    sys.exit(main())
