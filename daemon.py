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
import logging
import resource
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from cli.config import load_config, router_spec
from cli.logs import setup_logging
from cli.settings import Settings, settings_from
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
from store.service import Service, first_dead, start_in_order, stop_in_reverse
from store.statemark import check_state
from watcher.dirty import DirtySet
from watcher.engine import Engine
from watcher.once import make_senders, run_once
from watcher.sdnotify import Notifier
from web.startup import announce

if TYPE_CHECKING:
    from watcher.observer import InboxWatcher
    from web.deferred import DeferredWebServer

log = logging.getLogger("inboxd")


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


@dataclass(frozen=True)
class Parts:
    """The daemon's services in start order, and the ones the supervision loop talks to."""

    notifier: Notifier
    engine: Engine
    watcher: InboxWatcher
    web: DeferredWebServer
    services: tuple[Service, ...]


def build_parts(settings: Settings, pipeline: Pipeline, telemetry: Telemetry) -> Parts:
    """Build every service; nothing starts yet (the web server is built when started)."""
    # The watcher and the web part are imported here so that --once starts without them.
    from watcher.observer import InboxWatcher
    from web.deferred import deferred_web_server

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
    web = deferred_web_server(
        settings, telemetry, lambda: {t: n.name for t, n in engine.router.pipeline.nodes.items()}
    )
    watcher = InboxWatcher(settings.inbox.resolve(), dirty)
    # Watch first (no event is missed), then deliver, read, flush, serve.
    return Parts(notifier, engine, watcher, web, (watcher, senders, engine, flusher, web))


def start_parts(parts: Parts, settings: Settings) -> None:
    """Start the services in order (the engine opened before the next); READY=1 last."""
    start_in_order(parts.services)
    log.info(
        "inboxd started",
        extra={"event": "start", "inbox": str(settings.inbox), "port": parts.web.port},
    )
    announce(settings, parts.web.port)
    parts.notifier.ready()


def stop_parts(parts: Parts, settings: Settings) -> None:
    """Stop the services in reverse order, then flush what the engine's last commit added.

    The flusher stops before the engine (it started after it): its own last flush cannot
    hold the figures of the engine's final commit, so they are written here.
    """
    parts.notifier.stopping()
    stop_in_reverse(parts.services, JOIN_TIMEOUT_S)
    try:
        flush_once(parts.engine.telemetry, settings.db_path, settings.retention_days)
    except (sqlite3.Error, OSError) as exc:
        log.error("last flush failed: %s", exc, extra={"event": "flush_lost"})


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
        stop_parts(parts, settings)
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
        check_watcher(parts)
        # WATCHDOG=1 while the engine progresses, however slowly; none while it is
        # stalled, so systemd restarts a hung engine and never a slow one.
        if not parts.engine.watch(time.monotonic()):
            parts.notifier.watchdog()
        if reload.is_set():
            reload.clear()
            apply_reload(argv, settings, parts.engine)
        dead = first_dead(parts.services)
        if dead is not None:
            log.error("%s thread died; exiting so that the service restarts", dead.name,
                      extra={"event": "thread_died", "worker": dead.name})  # fmt: skip
            return EXIT_FAILURE
    return 0


def check_watcher(parts: Parts) -> None:
    """Watch the inbox again if it was replaced; /health's `watcher` check says whether."""
    parts.watcher.check()
    if parts.watcher.problem is None:
        parts.engine.telemetry.health.ok("watcher")
    else:
        parts.engine.telemetry.health.set("watcher", DEGRADED, parts.watcher.problem)


def apply_reload(argv: list[str] | None, settings: Settings, engine: Engine) -> None:
    """SIGHUP: the new pipeline, or the running one kept when the new one does not load."""
    try:
        pipeline, fresh = reload_pipeline(argv, settings)
        engine.set_router(
            build_router(settings, pipeline, engine.telemetry.tap),
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
            return run_once(settings, build_router(settings, pipeline), telemetry)
        return run_live(settings, pipeline, telemetry, argv)
    finally:
        teardown()
        for lock in locks:
            lock.release()


if __name__ == "__main__":
    sys.exit(main())
