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

Output is checked (processors.fastpath). Processors whose code proves its shape run in
loops that check only the line's type and the tag of each pair; every other processor
runs in a loop that also checks the result, each pair's class and their count against
`max_outputs`. What fails there is finished in processors.checked.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from processors import batch as batch_module
from processors import checked, fastpath, shape
from processors.batch import Batch, Keeper
from processors.builtin import KEEP_TAG, keep
from processors.checked import HopLimitExceeded, Recovery, UnknownTag
from processors.pipeline import END, START, Node, Pipeline
from store.live.tap import TapHub
from store.records import DeadLetter, ErrorRecord, Item, SinkLines, TraceBatch

__all__ = ["HopLimitExceeded", "Routed", "Router", "UnknownTag"]

_by_origin = itemgetter(0)
_line_of = itemgetter(1)
# Frames of these files are inboxd's, not the processor's, in an error's traceback.
OWN_FILES = frozenset(m.__file__ for m in (fastpath, checked, batch_module) if m.__file__)


@dataclass(slots=True)
class Routed:
    """The outcome of one batch."""

    out: list[str] = field(default_factory=list)
    # Per sink that received lines: (line numbers, lines) in input order.
    sinks: SinkLines = field(default_factory=dict)
    deadletters: list[DeadLetter] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)
    traces: TraceBatch | None = None
    stats: dict[str, list[float]] = field(default_factory=dict)


class Router:
    """Routes batches of lines through a Pipeline; used by the processing thread only."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        trace: bool = False,
        max_hops: int = 64,
        max_outputs: int = 10_000,
        keep_lines: str = "redacted",
        clock: Callable[[], float] = time.time,
        tap: TapHub | None = None,
        sinks: Iterable[str] = (),
    ) -> None:
        self.pipeline = pipeline
        # Tags that leave the graph like `end`, each to its own sink.
        self.sinks = tuple(sinks)
        self.trace = trace
        # While a tap client is connected, paths are built even without `trace`.
        self.tap = tap
        self.max_hops = max_hops
        self.max_outputs = max_outputs
        self.keeper = Keeper(keep_lines)
        self._clock = clock
        # Told the name of each processor as a wave of it starts (the engine records it
        # with the lines in flight, to name the processor a crash happened in).
        self.on_wave: Callable[[str], None] | None = None
        self._recovery = Recovery(pipeline.nodes, max_hops=max_hops, max_outputs=max_outputs)
        self._literal = {
            tag: shape.is_literal(node.fn, max_outputs) for tag, node in pipeline.nodes.items()
        }

    def is_literal(self, tag: str) -> bool:
        """Whether the processor at `tag` runs in the fast loops (its shape is proven)."""
        return self._literal[tag]

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
        batch = Batch(
            lines, file, first_line_no, self._clock(), routed.errors, routed.deadletters,
            trace, self.keeper, OWN_FILES,
        )  # fmt: skip
        ends: list[Item] = []
        sunk: dict[str, list[Item]] = {name: [] for name in self.sinks}
        # The first wave runs over the lines themselves: no item is built for a line
        # until one of its branches needs a parent.
        wave: dict[str, list[Any]] = {START: lines}
        hop = 0
        while wave:
            hop += 1
            # Buckets for the next wave; on the last allowed hop only `end` is open, so
            # any other tag falls to the slow path and is stopped there.
            nxt: dict[str, list[Item]] = (
                {} if hop >= self.max_hops else {t: [] for t in self.pipeline.nodes}
            )
            buckets = dict(nxt)
            buckets[END] = ends
            if sunk:
                buckets.update(sunk)
            for tag, items in wave.items():
                self._run(tag, items, buckets, batch, stats, first=hop == 1)
            wave = {t: b for t, b in nxt.items() if b}
        # One wave emits in input order already; later waves mix the lines' branches.
        if hop > 1 and len(ends) > 1:
            ends.sort(key=_by_origin)
        if sunk:
            self._sink_lines(routed, sunk, first_line_no, hop > 1)
        if trace:
            routed.traces = self._traces(batch, ends, sunk)
        routed.out = list(map(_line_of, ends))
        return routed

    @staticmethod
    def _sink_lines(
        routed: Routed, sunk: dict[str, list[Item]], first_line_no: int, mixed: bool
    ) -> None:
        for name, items in sunk.items():
            if items:
                if mixed and len(items) > 1:
                    items.sort(key=_by_origin)
                numbers = list(map(first_line_no.__add__, map(_by_origin, items)))
                routed.sinks[name] = (numbers, list(map(_line_of, items)))

    def _run(
        self,
        tag: str,
        items: list[Any],
        buckets: dict[str, list[Item]],
        batch: Batch,
        stats: dict[str, list[float]],
        *,
        first: bool,
    ) -> None:
        """One processor over its share of a wave, timed once for all of it."""
        node: Node = self.pipeline.nodes[tag]
        if self.on_wave is not None:
            self.on_wave(node.name)
        t0 = time.perf_counter()
        if node.fn is keep and fastpath.forward(KEEP_TAG, items, buckets, first=first):
            errors = retries = 0
        elif not self._literal[tag]:
            errors, retries = fastpath.run_checked(
                node, items, buckets, batch, self._recovery.fault_checked,
                first=first, max_outputs=self.max_outputs,
            )  # fmt: skip
        else:
            loop: fastpath.Loop
            if first:
                loop = fastpath.start_traced if batch.trace else fastpath.start_plain
            else:
                loop = fastpath.run_traced if batch.trace else fastpath.run_plain
            errors, retries = loop(node, items, buckets, batch, self._recovery.fault)
        s = stats[node.name]
        s[0] += len(items)
        s[1] += time.perf_counter() - t0
        s[2] += errors
        s[3] += retries

    def _traces(self, batch: Batch, ends: list[Item], sunk: dict[str, list[Item]]) -> TraceBatch:
        terminals = batch.terminals
        for items in sunk.values():
            terminals.extend(items)
        if terminals:
            terminals.extend(ends)
            terminals.sort(key=_by_origin)
        else:
            terminals = ends
        return TraceBatch(
            batch.ts, batch.file, batch.first_line_no, batch.lines, terminals, self.keeper.line
        )
