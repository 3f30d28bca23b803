"""The spooled sinks' sender threads, started, nudged and stopped together."""

from __future__ import annotations

import threading
import time

from sinks.base import SenderContext, SinkSpec
from sinks.registry import build_senders
from store.live.sinkboard import ONCE_FAILING_GRACE_S, SinkBoard


class Senders:
    """One SpoolSender per spooled sink; each owns its thread (DESIGN: whoever starts owns)."""

    def __init__(self, specs: tuple[SinkSpec, ...], ctx: SenderContext) -> None:
        self.board: SinkBoard = ctx.board
        self.senders = build_senders(specs, ctx)

    def __bool__(self) -> bool:
        return bool(self.senders)

    def start(self) -> None:
        for s in self.senders:
            s.start()

    def nudge(self) -> None:
        for s in self.senders:
            s.nudge()

    def stop(self) -> None:
        for s in self.senders:
            s.stop()

    def join(self, timeout: float | None = None) -> None:
        for s in self.senders:
            s.join(timeout)

    def is_alive(self) -> bool:
        """False when a sender's thread died (a bug: the daemon exits so systemd restarts)."""
        return all(s.is_alive() for s in self.senders)

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
            time.sleep(0.05)
