"""The hot loops of the router, for processors whose code proves their output's shape.

Such a processor (see processors.shape) yields or returns literal pairs, a bounded
number of them, so per pair only two things are left to check: the line is exactly a
`str` (one class test) and the tag names an open bucket (the dict lookup does it; only a
`str` equals a `str` key). Anything else leaves the loop through its `except` to
`fault`, which tells a processor's exception from a pair it could not route, a bad
pair, or a `str` subclass (routed as a plain `str` on the slow path).

The four loops are written out per case (first wave or later, traced or not) on purpose:
a shared loop with flags costs a test per line, measured as several percent of
end-to-end throughput. After a fault the loop variables are reset to `UNSET`, so that
`fault` never mistakes an earlier call's pair for the current one. Their locals `node`,
`batch`, `o` and `item` are read from another thread (see processors.contract).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from processors.batch import Batch
from processors.contract import NOT_PAIRS, UNSET, calls_processor
from processors.pipeline import START, Node
from store.records import Item

Buckets = dict[str, list[Item]]


class Stop(NamedTuple):
    """Where a proven loop stopped: the call, what it raised, the loop's variables.

    `res` is the call's result, `tag` and `line` the last pair unpacked from it; all
    three are `UNSET` when the loop has not set them since the last fault.
    """

    node: Node
    item: Item
    exc: BaseException
    res: Any
    tag: Any
    line: Any
    buckets: Buckets
    batch: Batch


class CheckedStop(NamedTuple):
    """Where the checked loop stopped: `pair` is the last item pulled from the result
    and `pulled` how many were (`UNSET` and 0 when not set since the last fault)."""

    node: Node
    item: Item
    exc: BaseException
    res: Any
    pair: Any
    pulled: int
    buckets: Buckets
    batch: Batch


Fault = Callable[[Stop], tuple[int, int]]
Loop = Callable[[Node, list[Any], Buckets, Batch, Fault], tuple[int, int]]
CheckedFault = Callable[[CheckedStop], tuple[int, int]]


@calls_processor
def start_plain(
    node: Node, lines: list[Any], buckets: Buckets, batch: Batch, fault: Fault
) -> tuple[int, int]:
    fn = node.fn
    errors = retries = 0
    res = t = line = UNSET
    for o, x in enumerate(lines):
        try:
            res = fn(x)
            for t, line in res:
                if line.__class__ is not str:
                    raise TypeError(line)
                buckets[t].append((o, line, t, None))
        except (Exception, SystemExit) as exc:
            e, r = fault(Stop(node, (o, x, START, None), exc, res, t, line, buckets, batch))
            errors += e
            retries += r
            res = t = line = UNSET
    return errors, retries


@calls_processor
def start_traced(
    node: Node, lines: list[Any], buckets: Buckets, batch: Batch, fault: Fault
) -> tuple[int, int]:
    fn = node.fn
    errors = retries = 0
    terminals = batch.terminals
    res = t = line = UNSET
    for o, x in enumerate(lines):
        try:
            res = fn(x)
            emitted = False
            for t, line in res:
                if line.__class__ is not str:
                    raise TypeError(line)
                buckets[t].append((o, line, t, None))
                emitted = True
            if not emitted:
                terminals.append((o, x, START, None))
        except (Exception, SystemExit) as exc:
            e, r = fault(Stop(node, (o, x, START, None), exc, res, t, line, buckets, batch))
            errors += e
            retries += r
            res = t = line = UNSET
    return errors, retries


@calls_processor
def run_plain(
    node: Node, items: list[Any], buckets: Buckets, batch: Batch, fault: Fault
) -> tuple[int, int]:
    fn = node.fn
    errors = retries = 0
    res = t = line = UNSET
    for item in items:
        o = item[0]
        try:
            res = fn(item[1])
            for t, line in res:
                if line.__class__ is not str:
                    raise TypeError(line)
                buckets[t].append((o, line, t, item))
        except (Exception, SystemExit) as exc:
            e, r = fault(Stop(node, item, exc, res, t, line, buckets, batch))
            errors += e
            retries += r
            res = t = line = UNSET
    return errors, retries


@calls_processor
def run_traced(
    node: Node, items: list[Any], buckets: Buckets, batch: Batch, fault: Fault
) -> tuple[int, int]:
    fn = node.fn
    errors = retries = 0
    terminals = batch.terminals
    res = t = line = UNSET
    for item in items:
        o = item[0]
        try:
            res = fn(item[1])
            emitted = False
            for t, line in res:
                if line.__class__ is not str:
                    raise TypeError(line)
                buckets[t].append((o, line, t, item))
                emitted = True
            if not emitted:
                terminals.append(item)
        except (Exception, SystemExit) as exc:
            e, r = fault(Stop(node, item, exc, res, t, line, buckets, batch))
            errors += e
            retries += r
            res = t = line = UNSET
    return errors, retries


def forward(tag: str, items: list[Any], buckets: Buckets, *, first: bool) -> bool:
    """Route a wave of the built-in `keep`, which returns `((tag, line),)` for every line,
    without calling it: the same items in the same order, built in one comprehension.

    False (nothing done) when `tag` has no open bucket, as on the last allowed hop: the
    loops then call the processor and the pair is stopped as usual.
    """
    bucket = buckets.get(tag)
    if bucket is None:
        return False
    if first:
        bucket.extend([(o, x, tag, None) for o, x in enumerate(items)])
    else:
        bucket.extend([(item[0], item[1], tag, item) for item in items])
    return True


@calls_processor
def run_checked(
    node: Node,
    items: list[Any],
    buckets: Buckets,
    batch: Batch,
    fault: CheckedFault,
    *,
    first: bool,
    max_outputs: int,
) -> tuple[int, int]:
    """Any processor whose code proves nothing: the result and every pair are checked.

    Per call the result's type is tested and the pairs are counted (the call fails at
    `max_outputs + 1`, the last pair ever pulled); per pair, exact classes are tested
    before the lookup. First-wave items are the bare lines. What fails goes to `fault`.
    """
    fn = node.fn
    errors = retries = 0
    trace = batch.trace
    terminals = batch.terminals
    res = pair = UNSET
    n = 0
    parent: Item | None = None
    for o, x in enumerate(items):
        if not first:
            parent, o, x = x, x[0], x[1]
        try:
            res = fn(x)
            if res is None or isinstance(res, NOT_PAIRS):
                raise TypeError(res)
            n = 0
            for pair in res:
                n += 1
                if n > max_outputs or pair.__class__ is not tuple:
                    raise TypeError(pair)
                t, line = pair
                if line.__class__ is not str:
                    raise TypeError(line)
                buckets[t].append((o, line, t, parent))
            if trace and not n:
                terminals.append((o, x, START, None) if parent is None else parent)
        except (Exception, SystemExit) as exc:
            item = (o, x, START, None) if parent is None else parent
            e, r = fault(CheckedStop(node, item, exc, res, pair, n, buckets, batch))
            errors += e
            retries += r
            res = pair = UNSET
            n = 0
    return errors, retries
