"""What each sink has done: lines delivered, errors, lines waiting, and its state.

Thread-safety: the processing thread counts what it delivers to the file, sqlite and
stdout sinks at each commit; a spooled sink's sender thread counts its own deliveries and
failures; the web thread and the metrics collector take snapshots. One lock guards all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from store.live.figures import Figure, sink_figures
from store.live.health import DEGRADED, OK, HealthBoard

# --once: how long a failing sink is given to come back before the run ends without it
# (its lines stay where they are: in the spool, or unread past the checkpoint).
ONCE_FAILING_GRACE_S = 10.0


class Described(Protocol):
    """What the board needs of a sink's spec (sinks/base.py SinkSpec)."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def max_pending(self) -> int: ...

    def describe(self, outbox: str, state_dir: str) -> str: ...


@dataclass(slots=True)
class SinkFigures:
    name: str
    type: str
    target: str
    lines: int = 0  # delivered since start (file, sqlite: committed; http: acknowledged)
    errors: int = 0  # failed deliveries (a POST that failed, a write that faulted)
    pending: int = 0  # lines accepted but not yet delivered (http: in the spool)
    status: str = OK
    reason: str | None = None
    since: float = 0.0
    last_delivery: float | None = None


class SinkBoard:
    def __init__(self, specs: Iterable[Described] = (), health: HealthBoard | None = None,
                 *, outbox: str = "outbox", state_dir: str = "var") -> None:  # fmt: skip
        self._lock = threading.Lock()
        self._health = health
        specs = list(specs)
        self._figures: dict[str, SinkFigures] = {
            s.name: SinkFigures(s.name, s.type, s.describe(outbox, state_dir)) for s in specs
        }
        # A spooled sink's limit: reading pauses while it holds that many lines (0: none).
        self._limits = {s.name: s.max_pending for s in specs}

    @property
    def names(self) -> list[str]:
        return list(self._figures)

    def delivered(self, name: str, lines: int, *, pending: int | None = None) -> None:
        """`lines` more were delivered (and, for a spool, `pending` are left)."""
        with self._lock:
            f = self._figures[name]
            f.lines += lines
            if pending is not None:
                f.pending = pending
            f.last_delivery = time.time()
        self.recovered(name)

    def add_pending(self, name: str, lines: int) -> None:
        with self._lock:
            self._figures[name].pending += lines

    def set_pending(self, name: str, lines: int) -> None:
        with self._lock:
            self._figures[name].pending = lines

    def failed(self, name: str, reason: str) -> None:
        """One failed delivery: counted, and the sink (so `/health` sinks) is degraded."""
        with self._lock:
            f = self._figures[name]
            f.errors += 1
            if f.status != DEGRADED or f.reason != reason:
                f.since = time.time() if f.status != DEGRADED else f.since
                f.status, f.reason = DEGRADED, reason
        if self._health is not None:
            self._health.set("sinks", DEGRADED, f"sink {name}: {reason}", owner=name,
                             details={"sink": name})  # fmt: skip

    def rejected(self, name: str, lines: int) -> None:
        """`lines` the receiver can never take went to the dead letters: counted as errors,
        the sink itself is fine."""
        with self._lock:
            self._figures[name].errors += lines

    def recovered(self, name: str) -> None:
        with self._lock:
            f = self._figures[name]
            was = f.status
            f.status, f.reason = OK, None
        if was != OK and self._health is not None:
            self._health.ok("sinks", owner=name)

    def failing(self) -> list[str]:
        with self._lock:
            return [n for n, f in self._figures.items() if f.status != OK]

    def blocked(self) -> str | None:
        """Why reading must pause (back-pressure), or None.

        A spooled sink (http, nats) that is failing, or whose spool holds `max_pending`
        lines or more, holds reading back: nothing moves past a checkpoint while its lines
        cannot go out. (A file, sqlite or stdout sink that cannot be written stops the
        commit itself: the engine pauses as for a full disk, and retries.)
        """
        with self._lock:
            for name, f in self._figures.items():
                limit = self._limits[name]
                if not limit:
                    continue
                if f.status != OK:
                    return f"sink {name} is failing: {f.reason}"
                if f.pending >= limit:
                    return f"sink {name} has {f.pending} lines waiting (max_pending {limit})"
        return None

    def pending(self, name: str) -> int:
        with self._lock:
            return self._figures[name].pending

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._figures.values()]

    def collect(self) -> Iterator[Figure]:
        """The /metrics figures of every configured sink (none without sinks)."""
        return sink_figures(self.snapshot())
