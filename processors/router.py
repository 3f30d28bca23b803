"""The router: the tag state machine that moves a batch of lines through the graph.

A batch advances in waves: every line waiting at tag T is handed to T's processor
before the next wave starts, so a processor runs in a tight loop over many lines, its
time is taken once per wave, and the hop count of every line is the wave number (no
per-line counter). Outbox lines are put back in input order at the end.

With tracing on, each item carries a parent-linked path node instead of a list; the
list is built only when someone reads the trace.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from processors.pipeline import END, START, Node, Pipeline
from store.records import (
    START_NODE,
    DeadLetter,
    ErrorRecord,
    PathNode,
    TraceRecord,
    clip,
    describe,
)

_by_origin = itemgetter(0)
Item = tuple[Any, ...]  # (origin, line) or, tracing, (origin, line, node)


class HopLimitExceeded(Exception):
    """A line passed more processors than max_hops allows."""


class UnknownTag(Exception):
    """A processor emitted a tag that names no processor."""


class BadOutput(TypeError):
    """A processor produced something that is not a (tag, line) pair."""


@dataclass(slots=True)
class Routed:
    """The outcome of one batch."""

    out: list[str] = field(default_factory=list)
    deadletters: list[DeadLetter] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)
    traces: list[TraceRecord] = field(default_factory=list)
    stats: dict[str, list[float]] = field(default_factory=dict)


@dataclass(slots=True)
class _Batch:
    lines: list[str]
    file: str | None
    first_line_no: int
    ts: float
    routed: Routed
    trace: bool

    def line_no(self, origin: int) -> int:
        return self.first_line_no + origin

    def fail(self, node: Node, origin: int, exc: BaseException, line: Any, tag: str) -> None:
        """Record an error; with `tag`, the branch is dead."""
        message = describe(exc)
        self.routed.errors.append(
            ErrorRecord(self.ts, node.name, message, self.file, self.line_no(origin), clip(line))
        )

    def dead(self, node: Node, origin: int, exc: BaseException, line: Any, tag: str) -> None:
        self.fail(node, origin, exc, line, tag)
        text = line if isinstance(line, str) else repr(line)
        self.routed.deadletters.append(
            DeadLetter(
                self.ts, self.file, self.line_no(origin), tag, node.name, describe(exc), text
            )
        )

    def terminate(self, origin: int, path: PathNode) -> None:
        self.routed.traces.append(
            TraceRecord(self.ts, path, self.file, self.line_no(origin), clip(self.lines[origin]))
        )


class Router:
    """Routes batches of lines through a Pipeline; used by the processing thread only."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        trace: bool = False,
        max_hops: int = 64,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pipeline = pipeline
        self.trace = trace
        self.max_hops = max_hops
        self._clock = clock

    def route(self, lines: list[str], file: str | None = None, first_line_no: int = 1) -> Routed:
        """Push `lines` (entering as `start`) through the graph; never raises for a line."""
        routed = Routed()
        stats = routed.stats
        for name in self.pipeline.names:
            stats[name] = [0, 0.0, 0, 0]
        if not lines:
            return routed
        batch = _Batch(lines, file, first_line_no, self._clock(), routed, self.trace)
        nodes = self.pipeline.nodes
        ends: list[Item] = []
        if self.trace:
            wave: dict[str, list[Item]] = {
                START: [(o, line, START_NODE) for o, line in enumerate(lines)]
            }
        else:
            wave = {START: list(enumerate(lines))}
        hop = 0
        while wave:
            hop += 1
            # Buckets for the next wave; on the last allowed hop only `end` is open, so
            # any other tag falls to the slow path and is stopped there.
            nxt: dict[str, list[Item]] = {} if hop >= self.max_hops else {t: [] for t in nodes}
            appenders = {t: b.append for t, b in nxt.items()}
            appenders[END] = ends.append
            for tag, items in wave.items():
                node = nodes[tag]
                run = self._run_traced if self.trace else self._run_plain
                t0 = time.perf_counter()
                errors, retries = run(node, items, appenders, batch)
                s = stats[node.name]
                s[0] += len(items)
                s[1] += time.perf_counter() - t0
                s[2] += errors
                s[3] += retries
            wave = {t: b for t, b in nxt.items() if b}
        if len(ends) > 1:
            ends.sort(key=_by_origin)
        if self.trace:
            for item in ends:
                batch.terminate(item[0], item[2])
        routed.out = [item[1] for item in ends]
        return routed

    def _run_plain(
        self, node: Node, items: list[Item], appenders: dict[str, Any], batch: _Batch
    ) -> tuple[int, int]:
        fn = node.fn
        errors = retries = 0
        for item in items:
            try:
                res = list(fn(item[1]))
            except Exception as exc:
                res, e, r = self._retry(node, item, exc, batch)
                errors += e
                retries += r
                if res is None:
                    continue
            o = item[0]
            try:
                for t, line in res:
                    appenders[t]((o, line))
            except Exception:
                self._rollback(res, appenders)
                errors += self._distribute(node, item, res, appenders, batch)
        return errors, retries

    def _run_traced(
        self, node: Node, items: list[Item], appenders: dict[str, Any], batch: _Batch
    ) -> tuple[int, int]:
        fn = node.fn
        errors = retries = 0
        for item in items:
            path = item[2]
            try:
                res = list(fn(item[1]))
            except Exception as exc:
                res, e, r = self._retry(node, item, exc, batch)
                errors += e
                retries += r
                if res is None:
                    continue
                path = _retried(path, r)
            o = item[0]
            if not res:
                batch.terminate(o, path)
                continue
            try:
                for t, line in res:
                    appenders[t]((o, line, (t, path)))
            except Exception:
                self._rollback(res, appenders)
                errors += self._distribute(node, (o, item[1], path), res, appenders, batch)
        return errors, retries

    def _retry(
        self, node: Node, item: Item, exc: Exception, batch: _Batch
    ) -> tuple[list[Any] | None, int, int]:
        """Call the processor again up to its retries; (outputs or None, errors, retries)."""
        errors = 1
        batch.fail(node, item[0], exc, item[1], node.tag)
        for attempt in range(1, node.retries + 1):
            try:
                return list(node.fn(item[1])), errors, attempt
            except Exception as again:
                errors += 1
                exc = again
                batch.fail(node, item[0], exc, item[1], node.tag)
        retries = node.retries
        batch.routed.deadletters.append(
            DeadLetter(
                batch.ts, batch.file, batch.line_no(item[0]), node.tag, node.name,
                describe(exc), item[1] if isinstance(item[1], str) else repr(item[1]),
            )
        )  # fmt: skip
        if batch.trace:
            batch.terminate(item[0], _retried(item[2], retries))
        return None, errors, retries

    @staticmethod
    def _rollback(res: list[Any], appenders: dict[str, Any]) -> None:
        """Undo the appends the fast path made for one call's outputs before it tripped."""
        for pair in res:
            try:
                t, _line = pair
                append = appenders[t]
            except Exception:
                return
            append.__self__.pop()

    def _distribute(
        self, node: Node, item: Item, res: list[Any], appenders: dict[str, Any], batch: _Batch
    ) -> int:
        """Route one call's outputs pair by pair, stopping only the bad branches."""
        o = item[0]
        errors = 0
        path = item[2] if batch.trace else None
        for pair in res:
            if not (isinstance(pair, tuple | list) and len(pair) == 2):
                exc: Exception = BadOutput(f"expected a (tag, line) pair, got {pair!r:.80}")
                tag = "?"
            elif not isinstance(pair[0], str) or not isinstance(pair[1], str):
                exc = BadOutput(f"tag and line must be str, got {pair!r:.80}")
                tag = pair[0] if isinstance(pair[0], str) else "?"
            elif pair[0] in appenders:
                t, line = pair
                appenders[t]((o, line, (t, path)) if batch.trace else (o, line))
                continue
            elif pair[0] in self.pipeline.nodes:
                exc = HopLimitExceeded(f"line passed {self.max_hops} processors (max_hops)")
                tag = pair[0]
            else:
                exc = UnknownTag(f"no processor for tag {pair[0]!r}")
                tag = pair[0]
            errors += 1
            batch.dead(node, o, exc, pair[1] if tag != "?" else item[1], tag)
            if batch.trace and path is not None:
                batch.terminate(o, path)
        return errors


def _retried(path: PathNode, retries: int) -> PathNode:
    for _ in range(retries):
        path = ("retry", path)
    return path
