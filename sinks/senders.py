"""The spooled sinks' sender threads, started, nudged and stopped together."""

from __future__ import annotations

import threading
import time

from sinks.base import SenderContext, SinkSpec
from sinks.registry import build_senders
from store.live.sinkboard import ONCE_FAILING_GRACE_S, SinkBoard
from store.service import Service


class Senders(Service):
    """One SpoolSender per spooled sink, started, stopped and joined as one Service.

    The group has no thread of its own: each sender owns its thread. Thread-safety as
    for Service; nudge() may be called from any thread (it only sets Events).
    """

    def __init__(self, specs: tuple[SinkSpec, ...], ctx: SenderContext) -> None:
        super().__init__("sink senders", thread_name="inboxd-sink-senders")
        self.board: SinkBoard = ctx.board
        self.senders = build_senders(specs, ctx)
        self._started = False

    def __bool__(self) -> bool:
        return bool(self.senders)

    def start(self) -> None:
        if self._started or self.is_stopping:
            return
        self._started = True
        for s in self.senders:
            s.start()

    @property
    def is_started(self) -> bool:
        """True once start() ran (the threads are the senders', not the group's)."""
        return self._started

    def nudge(self) -> None:
        for s in self.senders:
            s.nudge()

    def on_stop(self) -> None:
        for s in self.senders:
            s.stop()

    def join(self, timeout: float | None = None) -> None:
        """Join every sender within one `timeout` for the whole group."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for s in self.senders:
            s.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))

    def is_alive(self) -> bool:
        """False before start(), and when a sender's thread died (a bug: the daemon exits so
        systemd restarts it); a group of no sender lives from start() until stop()."""
        if not self.senders:
            return self._started and not self.is_stopping
        return self._started and all(s.is_alive() for s in self.senders)

    @property
    def error(self) -> BaseException | None:
        """What ended the first sender that died of a bug, if any did."""
        return next((s.error for s in self.senders if s.error is not None), None)

    def wait_delivered(self, stop: threading.Event | None = None) -> list[str]:
        """--once: wait until every spool is empty; returns the sinks given up on.

        A sink that keeps failing for ONCE_FAILING_GRACE_S is given up: its lines stay
        in the spool for the next run.
        """
        names = [s.name for s in self.senders]
        failing_since: dict[str, float] = {}
        while True:
            now = time.monotonic()
            waiting = [n for n in names if self.board.pending(n) > 0]
            failing = set(self.board.failing())
            for n in waiting:
                if n in failing:
                    failing_since.setdefault(n, now)
                else:
                    failing_since.pop(n, None)
            grace = ONCE_FAILING_GRACE_S
            given_up = [n for n in waiting if now - failing_since.get(n, now) >= grace]
            if len(given_up) == len(waiting) or not all(s.is_alive() for s in self.senders):
                return waiting
            if stop is not None and stop.is_set():
                return waiting
            self._stop.wait(0.05)
