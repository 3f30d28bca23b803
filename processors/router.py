"""The router: the tag state machine that moves a batch of lines through the graph.

A batch advances in waves: every line waiting at tag T is handed to T's processor
before the next wave starts, so a processor runs in a tight loop over many lines, its
time is taken once per wave, and the hop count of every line is the wave number (no
per-line counter). Outbox lines are put back in input order at the end.

Every branch is one tuple `(origin, line, tag, parent)`: `origin` indexes the input
line (its line number, its place in the outbox), `parent` is the branch it came from.
The parent link serves twice: it tells exactly which call produced a branch, so a
failed call's outputs are taken back without copying every call's outputs first, and it
is the trace path, turned into a list of tags only for the traces someone keeps.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from processors.pipeline import END, START, Node, Pipeline
from store.records import DeadLetter, ErrorRecord, Item, TraceBatch, clip, describe
from store.tap import TapHub

_by_origin = itemgetter(0)


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
    traces: TraceBatch | None = None
    stats: dict[str, list[float]] = field(default_factory=dict)


@dataclass(slots=True)
class _Batch:
    lines: list[str]
    file: str | None
    first_line_no: int
    ts: float
    routed: Routed
    trace: bool
    terminals: list[Item] = field(default_factory=list)

    def line_no(self, origin: int) -> int:
        return self.first_line_no + origin

    def fail(self, node: Node, origin: int, exc: BaseException, line: Any) -> None:
        """Record one failed attempt (or bad output) of a processor."""
        message = describe(exc)
        self.routed.errors.append(
            ErrorRecord(self.ts, node.name, message, self.file, self.line_no(origin), clip(line))
        )

    def dead(self, node: Node, origin: int, exc: BaseException, line: Any, tag: str) -> None:
        """Send a branch to the dead letters."""
        text = line if isinstance(line, str) else repr(line)
        self.routed.deadletters.append(
            DeadLetter(
                self.ts, self.file, self.line_no(origin), tag, node.name, describe(exc), text
            )
        )

    def terminate(self, branch: Item) -> None:
        """A traced branch ended here (dropped, failed or stopped)."""
        self.terminals.append(branch)


class Router:
    """Routes batches of lines through a Pipeline; used by the processing thread only."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        trace: bool = False,
        max_hops: int = 64,
        clock: Callable[[], float] = time.time,
        tap: TapHub | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.trace = trace
        # While a tap client is connected, paths are built even without `trace`.
        self.tap = tap
        self.max_hops = max_hops
        self._clock = clock

    def route(self, lines: list[str], file: str | None = None, first_line_no: int = 1) -> Routed:
        """Push `lines` (entering as `start`) through the graph; never raises for a line.

        The cyclic garbage collector is paused for the batch: it would otherwise walk the
        batch's hundreds of thousands of young tuples again and again (measured: twice
        the routing time with tracing on), and a batch creates no cycles of its own.
        """
        if not gc.isenabled():
            return self._route(lines, file, first_line_no)
        gc.disable()
        try:
            return self._route(lines, file, first_line_no)
        finally:
            gc.enable()

    def _route(self, lines: list[str], file: str | None, first_line_no: int) -> Routed:
        routed = Routed()
        stats = routed.stats
        for name in self.pipeline.names:
            stats[name] = [0, 0.0, 0, 0]
        if not lines:
            return routed
        trace = self.trace or (self.tap is not None and self.tap.active)
        batch = _Batch(lines, file, first_line_no, self._clock(), routed, trace)
        nodes = self.pipeline.nodes
        run = self._run_traced if trace else self._run_plain
        start = self._start_traced if trace else self._start_plain
        ends: list[Item] = []
        # The first wave runs over the lines themselves: no item is built for a line
        # until one of its branches needs a parent.
        wave: dict[str, list[Any]] = {START: lines}
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
                t0 = time.perf_counter()
                if hop == 1:
                    errors, retries = start(node, items, appenders, batch)
                else:
                    errors, retries = run(node, items, appenders, batch)
                s = stats[node.name]
                s[0] += len(items)
                s[1] += time.perf_counter() - t0
                s[2] += errors
                s[3] += retries
            wave = {t: b for t, b in nxt.items() if b}
        if len(ends) > 1:
            ends.sort(key=_by_origin)
        if trace:
            terminals = batch.terminals
            if terminals:
                terminals.extend(ends)
                terminals.sort(key=_by_origin)
            else:
                terminals = ends
            routed.traces = TraceBatch(batch.ts, file, first_line_no, lines, terminals)
        routed.out = [item[1] for item in ends]
        return routed

    # The four loops below are the hot path, written out per case (first wave or later,
    # traced or not) on purpose: a shared loop with flags costs a test per line, which
    # measured as several percent of end-to-end throughput.

    def _start_plain(
        self, node: Node, lines: list[str], appenders: dict[str, Any], batch: _Batch
    ) -> tuple[int, int]:
        fn = node.fn
        errors = retries = 0
        for o, x in enumerate(lines):
            res = None
            try:
                res = fn(x)
                for t, line in res:
                    appenders[t]((o, line, t, None))
            except Exception as exc:
                bad = line if _is_routing_miss(res, exc) else None
                item = (o, x, START, None)
                e, r = self._recover(node, item, res, exc, bad, appenders, batch)
                errors += e
                retries += r
        return errors, retries

    def _start_traced(
        self, node: Node, lines: list[str], appenders: dict[str, Any], batch: _Batch
    ) -> tuple[int, int]:
        fn = node.fn
        errors = retries = 0
        terminals = batch.terminals
        for o, x in enumerate(lines):
            res = None
            try:
                res = fn(x)
                emitted = False
                for t, line in res:
                    appenders[t]((o, line, t, None))
                    emitted = True
                if not emitted:
                    terminals.append((o, x, START, None))
            except Exception as exc:
                bad = line if _is_routing_miss(res, exc) else None
                item = (o, x, START, None)
                e, r = self._recover(node, item, res, exc, bad, appenders, batch)
                errors += e
                retries += r
        return errors, retries

    def _run_plain(
        self, node: Node, items: list[Item], appenders: dict[str, Any], batch: _Batch
    ) -> tuple[int, int]:
        fn = node.fn
        errors = retries = 0
        for item in items:
            o = item[0]
            res = None
            try:
                res = fn(item[1])
                for t, line in res:
                    appenders[t]((o, line, t, item))
            except Exception as exc:
                bad = line if _is_routing_miss(res, exc) else None
                e, r = self._recover(node, item, res, exc, bad, appenders, batch)
                errors += e
                retries += r
        return errors, retries

    def _run_traced(
        self, node: Node, items: list[Item], appenders: dict[str, Any], batch: _Batch
    ) -> tuple[int, int]:
        fn = node.fn
        errors = retries = 0
        terminals = batch.terminals
        for item in items:
            o = item[0]
            res = None
            try:
                res = fn(item[1])
                emitted = False
                for t, line in res:
                    appenders[t]((o, line, t, item))
                    emitted = True
                if not emitted:
                    terminals.append(item)
            except Exception as exc:
                bad = line if _is_routing_miss(res, exc) else None
                e, r = self._recover(node, item, res, exc, bad, appenders, batch)
                errors += e
                retries += r
        return errors, retries

    # -- the slow path: only after a call raised or emitted something unroutable ----------

    def _recover(
        self,
        node: Node,
        item: Item,
        res: Any,
        exc: Exception,
        bad_line: Any,
        appenders: dict[str, Any],
        batch: _Batch,
    ) -> tuple[int, int]:
        """Finish one call the fast loop tripped on; returns (errors, retries)."""
        if res is None or exc.__traceback__ is None or exc.__traceback__.tb_next is not None:
            # The processor itself raised: take back what it emitted, then retry.
            _take_back(item, appenders)
            return self._retry(node, item, exc, appenders, batch)
        done = _count_owned(item, appenders)
        try:
            rest = _remaining(res, done + 1)
        except Exception as again:
            _take_back(item, appenders)
            return self._retry(node, item, again, appenders, batch)
        if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str):
            first: list[Any] = [(exc.args[0], bad_line)]
        else:
            first = [_Malformed(exc)]
        return self._distribute(node, item, first + rest, appenders, batch), 0

    def _retry(
        self, node: Node, item: Item, exc: Exception, appenders: dict[str, Any], batch: _Batch
    ) -> tuple[int, int]:
        """Call the processor again up to its retries, then give the line up."""
        o, x = item[0], item[1]
        errors = 1
        batch.fail(node, o, exc, x)
        for attempt in range(1, node.retries + 1):
            item = (o, x, "retry", item)
            try:
                res = [*node.fn(x)]
            except Exception as again:
                errors += 1
                exc = again
                batch.fail(node, o, exc, x)
                continue
            return errors + self._distribute(node, item, res, appenders, batch), attempt
        batch.dead(node, o, exc, x, node.tag)
        if batch.trace:
            batch.terminate(item)
        return errors, node.retries

    def _distribute(
        self, node: Node, item: Item, res: list[Any], appenders: dict[str, Any], batch: _Batch
    ) -> int:
        """Route one call's outputs pair by pair, stopping only the bad branches."""
        o, x = item[0], item[1]
        errors = 0
        emitted = False
        for pair in res:
            exc: Exception
            if isinstance(pair, _Malformed):
                exc, tag, line = BadOutput(f"bad output: {describe(pair.exc)}"), "?", x
            elif not (isinstance(pair, tuple | list) and len(pair) == 2):
                exc, tag, line = BadOutput(f"expected a (tag, line) pair, got {pair!r:.80}"), "?", x
            elif not isinstance(pair[0], str) or not isinstance(pair[1], str):
                exc = BadOutput(f"tag and line must be str, got {pair!r:.80}")
                tag, line = (pair[0] if isinstance(pair[0], str) else "?"), x
            elif pair[0] in appenders:
                t, out = pair
                appenders[t]((o, out, t, item))
                emitted = True
                continue
            elif pair[0] in self.pipeline.nodes:
                exc = HopLimitExceeded(f"line passed {self.max_hops} processors (max_hops)")
                tag, line = pair[0], pair[1]
            else:
                exc, tag, line = UnknownTag(f"no processor for tag {pair[0]!r}"), pair[0], pair[1]
            errors += 1
            batch.fail(node, o, exc, line)
            batch.dead(node, o, exc, line, tag)
            if batch.trace:
                batch.terminate(item)
        if not emitted and not errors and batch.trace:
            batch.terminate(item)
        return errors


class _Malformed:
    """Stands for an output pair the fast loop could not unpack."""

    __slots__ = ("exc",)

    def __init__(self, exc: Exception) -> None:
        self.exc = exc


def _is_routing_miss(res: Any, exc: Exception) -> bool:
    """True when a KeyError came from looking up an emitted tag, not from the processor."""
    tb = exc.__traceback__
    return res is not None and isinstance(exc, KeyError) and tb is not None and tb.tb_next is None


def _owned(branch: Item, item: Item) -> bool:
    """Whether `branch` was emitted by the call on `item`.

    First-wave branches have no parent item (none is built on the fast path); their
    origin tells them apart, as every line enters the first wave once.
    """
    parent = branch[3]
    if item[3] is None and item[2] == START:
        return parent is None and bool(branch[0] == item[0])
    return parent is item


def _take_back(item: Item, appenders: dict[str, Any]) -> None:
    """Remove what the call on `item` emitted: its branches sit at the buckets' tails."""
    for append in appenders.values():
        bucket = append.__self__
        while bucket and _owned(bucket[-1], item):
            bucket.pop()


def _count_owned(item: Item, appenders: dict[str, Any]) -> int:
    count = 0
    for append in appenders.values():
        bucket = append.__self__
        i = len(bucket) - 1
        while i >= 0 and _owned(bucket[i], item):
            count += 1
            i -= 1
    return count


def _remaining(res: Any, consumed: int) -> list[Any]:
    """The outputs of a call after the first `consumed` ones, as a list."""
    if iter(res) is res:
        return [*res]
    if isinstance(res, Sequence):
        return list(res[consumed:])
    return [*res][consumed:]
