"""When the processing thread holds still: a shared fault of the world, or a sink that
cannot take more lines. Used by the processing thread only.

A shared fault (full disk, read-only file system, locked database, a sink that cannot
be written) drops the reader; `FaultPause` says so on /health and when to try again.
Back-pressure from a spooled sink (http, nats) keeps the reader but reads nothing until its sender
catches up (`SinkBoard.blocked`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from store.live.health import DEGRADED, HealthBoard
from store.live.sinkboard import ONCE_FAILING_GRACE_S, SinkBoard
from watcher.reading.faults import SharedFault

log = logging.getLogger("inboxd.engine")

# After a shared fault, the engine tries again this often.
SHARED_RETRY_S = 2.0
# How long a round waits while a sink holds reading back.
BACKPRESSURE_WAIT_S = 0.2
SHARED_CHECKS = ("disk", "database", "sinks")


class FaultPause:
    """The shared fault the engine is paused on (if any), and when it tries again."""

    def __init__(self, health: HealthBoard) -> None:
        self.health = health
        self.fault: SharedFault | None = None
        self.retry_at = 0.0

    def pause(self, fault: SharedFault, now: float) -> None:
        """Reading stops until the resource can be written again; /health says why."""
        self.retry_at = now + SHARED_RETRY_S
        if self.fault is None or self.fault.reason != fault.reason:
            log.warning(
                "paused: %s; retrying every %.0f s", fault.reason, SHARED_RETRY_S,
                extra={"event": "paused", "check": fault.check, "reason": fault.reason},
            )  # fmt: skip
        for check in SHARED_CHECKS:
            if check == fault.check:
                self.health.set(check, DEGRADED, fault.reason, owner="engine")
            else:
                self.health.ok(check, owner="engine")
        self.fault = fault

    def resume(self) -> None:
        """Called after a round that ran through: a pause, if any, is over."""
        if self.fault is None:
            return
        log.info("resumed", extra={"event": "resumed", "after": self.fault.reason})
        for check in SHARED_CHECKS:
            self.health.ok(check, owner="engine")
        self.fault = None


def wait_for_sinks(board: SinkBoard, commit: Callable[[], None], stop: threading.Event) -> None:
    """--once: wait while a spooled sink's spool is full or it fails; one that fails for
    ONCE_FAILING_GRACE_S stops the run (SharedFault: nothing is lost, the next run goes
    on from the checkpoints and the spool)."""
    failing_since: float | None = None
    while (why := board.blocked()) is not None:
        commit()
        now = time.monotonic()
        if not board.failing():
            failing_since = None
        elif failing_since is None:
            failing_since = now
        elif now - failing_since >= ONCE_FAILING_GRACE_S:
            raise SharedFault("sinks", why)
        stop.wait(BACKPRESSURE_WAIT_S)
