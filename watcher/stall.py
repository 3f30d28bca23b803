"""Seeing what the processing thread is doing: the processor call in flight, and stalls.

The hot path pays nothing for this. The supervisor (main thread) samples the engine
thread's Python stack a few times a second: the router's loops keep the processor
(`node`), the batch (`batch`: file, first line number) and the line's place in it (`o`,
or `item[0]`) in local variables, which a frame exposes. A call is in flight while one
of the router's frames is on the stack; progress is a change of (processor, line) or a
heartbeat of the engine loop. No progress for `stall_timeout` seconds while not idle is
a stall: /health turns `failing`, and WATCHDOG=1 stops so systemd restarts a hung engine
(a slow one keeps progressing and is never restarted).
"""

from __future__ import annotations

import logging

from processors.current import CurrentCall
from store.live.health import FAILING
from store.live.telemetry import Telemetry

log = logging.getLogger("inboxd.engine")


class StallWatch:
    """Decides, from samples and heartbeats, whether the engine is stalled.

    Used by the supervising thread only; the engine writes `beat` and `idle` (plain
    attribute stores: a racy read at worst delays a verdict by one sample).
    """

    def __init__(self, stall_timeout: float) -> None:
        self.stall_timeout = stall_timeout
        self._last_call: tuple[int, int, int] | None = None
        self._progress_at = 0.0
        self.current: CurrentCall | None = None
        self.stalled = False

    def check(self, now: float, sample: CurrentCall | None, beat: float, idle: bool) -> float:
        """Seconds without progress while busy (0.0 when progressing or idle)."""
        self.current = sample
        call = sample.call if sample is not None else None
        if call != self._last_call:
            self._last_call = call
            self._progress_at = now
        if idle and sample is None:
            return 0.0
        since = max(self._progress_at, beat)
        stuck = now - since
        return stuck if stuck >= self.stall_timeout else 0.0

    def verdict(
        self, now: float, sample: CurrentCall | None, beat: float, idle: bool, telemetry: Telemetry
    ) -> float:
        """check(), published: the `engine` check of /health `failing` while stalled
        (naming the processor, file, line and seconds), the stalled-seconds gauge, and
        one log line when a stall starts and when it ends."""
        stuck = self.check(now, sample, beat, idle)
        telemetry.set_gauge("engine_stalled_seconds", stuck)
        health = telemetry.health
        if not stuck:
            if health.ok("engine", owner="stall") and self.stalled:
                log.info("engine progressing again", extra={"event": "unstalled"})
            self.stalled = False
            return 0.0
        what = sample.processor if sample is not None else "the engine loop"
        where = f" on {sample.file} line {sample.line_no}" if sample is not None else ""
        reason = f"{what} has not returned for {stuck:.0f} s{where}"
        details = {"processor": sample.processor if sample else None,
                   "file": sample.file if sample else None,
                   "line_no": sample.line_no if sample else None,
                   "seconds": round(stuck, 1)}  # fmt: skip
        health.set("engine", FAILING, reason, owner="stall", details=details)
        if not self.stalled:
            log.error("engine stalled: %s", reason, extra={"event": "stalled", **details})
        self.stalled = True
        return stuck
