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

import os
import sys
from dataclasses import dataclass
from types import FrameType
from typing import Any

import processors.router as router_module

# The router and the loops it runs live in this folder; user code and the built-ins
# have no `node` and `batch` locals.
_ROUTER_DIR = os.path.dirname(router_module.__file__)


@dataclass(frozen=True, slots=True)
class InFlight:
    """The processor call the engine thread is in."""

    processor: str
    file: str | None
    line_no: int | None
    call: tuple[int, int, int]  # identifies the call: (batch, node, line)


def in_flight(thread_id: int | None) -> InFlight | None:
    """The processor call thread `thread_id` is in, from its stack; None when in none."""
    if thread_id is None:
        return None
    frame: FrameType | None = sys._current_frames().get(thread_id)
    while frame is not None:
        if frame.f_code.co_filename.startswith(_ROUTER_DIR):
            found = _from_locals(frame.f_locals)
            if found is not None:
                return found
        frame = frame.f_back
    return None


def _from_locals(local: dict[str, Any]) -> InFlight | None:
    node, batch = local.get("node"), local.get("batch")
    if node is None or batch is None:
        return None
    origin = local.get("o")
    if not isinstance(origin, int):
        item = local.get("item")
        origin = item[0] if isinstance(item, tuple) and item and isinstance(item[0], int) else None
    first = getattr(batch, "first_line_no", None)
    line_no = first + origin if isinstance(first, int) and origin is not None else None
    name = str(getattr(node, "name", "?"))
    return InFlight(name, getattr(batch, "file", None), line_no,
                    (id(batch), id(node), -1 if origin is None else origin))  # fmt: skip


class StallWatch:
    """Decides, from samples and heartbeats, whether the engine is stalled.

    Used by the supervising thread only; the engine writes `beat` and `idle` (plain
    attribute stores: a racy read at worst delays a verdict by one sample).
    """

    def __init__(self, stall_timeout: float) -> None:
        self.stall_timeout = stall_timeout
        self._last_call: tuple[int, int, int] | None = None
        self._progress_at = 0.0
        self.current: InFlight | None = None

    def check(self, now: float, sample: InFlight | None, beat: float, idle: bool) -> float:
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
