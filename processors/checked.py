"""Checking outputs the slow way: retries, failed calls, branches that cannot be routed.

The hot loops (processors.fastpath) come here when a call trips them: a processor's
exception, a bad result or pair, too many pairs, a tag with no open bucket. Retries take
a call's output whole and bounded before any of it is routed: `max_outputs + 1` items at
most are ever pulled from an iterator, so a generator that never ends costs one
OverflowError per attempt, not the machine's memory.

A bad output (a `str`, `bytes` or `None` result, an item that is not a pair of two `str`,
too many pairs) fails the call like an exception: one error per attempt, retries apply,
and the line is dead-lettered once. An unknown tag, or a hop past `max_hops`, stops only
that branch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Any

from processors.batch import Batch
from processors.contract import NOT_PAIRS, UNSET, calls_processor
from processors.fastpath import CheckedStop, Stop
from processors.pipeline import START, Node
from store.records import Item


class HopLimitExceeded(Exception):
    """A line passed more processors than max_hops allows."""


class UnknownTag(Exception):
    """A processor emitted a tag that names no processor."""


class OutputRejected(Exception):
    """A call's output is not (tag, line) pairs; `error` is what the records show."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def shape_of(value: object) -> str:
    """How a bad item is named in messages: its type, and for tuples what they hold."""
    if type(value) is tuple:
        inner = ", ".join(type(v).__name__ for v in value[:3])
        return f"tuple ({inner}{', ...' if len(value) > 3 else ''})"
    return type(value).__name__


def collect(name: str, res: Any, max_outputs: int) -> Sequence[tuple[str, str]]:
    """The pairs of one call's result, checked; the processor's own exceptions propagate."""
    if res is None or isinstance(res, NOT_PAIRS):
        raise OutputRejected(
            TypeError(f"{name} returned {type(res).__name__}, expected (tag, line) pairs")
        )
    if type(res) is list or type(res) is tuple:
        pairs: Sequence[Any] = res
    else:
        try:
            it = iter(res)
        except TypeError:
            raise OutputRejected(
                TypeError(f"{name} returned {type(res).__name__}, expected (tag, line) pairs")
            ) from None
        pairs = [*islice(it, max_outputs + 1)]
    if len(pairs) > max_outputs:
        raise OutputRejected(
            OverflowError(f"{name} yielded more than {max_outputs} pairs (max_outputs)")
        )
    check_pairs(name, pairs)
    return pairs


def check_pairs(name: str, pairs: Sequence[Any]) -> None:
    for pair in pairs:
        if not _is_pair(pair):
            raise _rejected(name, pair)


def _is_pair(pair: Any) -> bool:
    return (
        isinstance(pair, tuple)
        and len(pair) == 2
        and isinstance(pair[0], str)
        and isinstance(pair[1], str)
    )


def _bad_result(name: str, res: Any, count: int, max_outputs: int) -> OutputRejected | None:
    """What is wrong with a call's result as a whole, if anything."""
    if res is UNSET:
        return None
    if count > max_outputs:
        return OutputRejected(
            OverflowError(f"{name} yielded more than {max_outputs} pairs (max_outputs)")
        )
    try:
        iterable = res is not None and not isinstance(res, NOT_PAIRS) and bool(iter(res))
    except TypeError:
        iterable = False
    if iterable:
        return None
    return OutputRejected(
        TypeError(f"{name} returned {type(res).__name__}, expected (tag, line) pairs")
    )


def _rejected(name: str, item: object) -> OutputRejected:
    return OutputRejected(
        TypeError(f"{name} yielded {shape_of(item)}, expected (tag, line) pairs of str")
    )


class Recovery:
    """Checked calls and everything after a call went wrong; used by the router only."""

    def __init__(self, nodes: Mapping[str, Node], *, max_hops: int, max_outputs: int) -> None:
        self.nodes = nodes
        self.max_hops = max_hops
        self.max_outputs = max_outputs

    @calls_processor
    def call(
        self,
        node: Node,
        item: Item,
        buckets: dict[str, list[Item]],
        batch: Batch,
        *,
        attempt: int = 1,
        failed: BaseException | None = None,
    ) -> tuple[int, int]:
        """Call `node` on `item` until an attempt succeeds or retries run out.

        `attempt` > 1 continues after a first attempt the fast loop saw fail with
        `failed`. Returns (errors, retries).
        """
        o, x = item[0], item[1]
        errors = 0
        cur = item
        for n in range(attempt, node.retries + 2):
            if n > 1:
                cur = (o, x, "retry", cur)
            try:
                pairs = collect(node.name, node.fn(x), self.max_outputs)
            except OutputRejected as rejected:
                failed = rejected.error
                batch.fail(node, o, failed, x, n, tb=False)
            except (Exception, SystemExit) as exc:
                failed = exc
                batch.fail(node, o, exc, x, n, tb=True)
            else:
                return errors + self.distribute(node, cur, pairs, buckets, batch, n), n - 1
            errors += 1
        assert failed is not None
        batch.dead(node, o, failed, x, node.tag)
        if batch.trace:
            batch.terminate(cur)
        return errors, node.retries

    def fault(self, stop: Stop) -> tuple[int, int]:
        """Finish a call of a proven processor that raised inside the fast loop.

        The loop's variables in `stop` (the call's result and the last pair it unpacked)
        tell a processor's exception from a pair the loop could not route.
        """
        node, item, exc, res, tag, line, buckets, batch = stop
        if _raised_by_loop(exc) and tag is not UNSET:
            if not (isinstance(tag, str) and isinstance(line, str)):
                exc = _rejected(node.name, (tag, line))
            elif type(line) is not str or not _is_routable(tag, buckets):
                # A str subclass, or a tag with no open bucket: the slow path routes it.
                return self._continue(node, item, res, tag, line, buckets, batch)
        _take_back(item, buckets)
        if isinstance(exc, OutputRejected):
            batch.fail(node, item[0], exc.error, item[1], 1, tb=False)
            exc = exc.error
        else:
            batch.fail(node, item[0], exc, item[1], 1, tb=True)
        errors, retries = self.call(node, item, buckets, batch, attempt=2, failed=exc)
        return errors + 1, retries

    def fault_checked(self, stop: CheckedStop) -> tuple[int, int]:
        """Finish a call of an unproven processor that raised inside its checked loop.

        The loop's variables in `stop`: the call's result, the last item pulled from it
        and how many were pulled (`UNSET`/0 when not set since the last fault: a
        processor that raised in its own call leaves them at the values of an earlier
        call, which passed every check).
        """
        node, item, exc, res, pair, count, buckets, batch = stop
        if _raised_by_loop(exc):
            rejected = _bad_result(node.name, res, count, self.max_outputs)
            if rejected is None and pair is not UNSET:
                if not _is_pair(pair):
                    rejected = _rejected(node.name, pair)
                elif (
                    type(pair) is not tuple
                    or type(pair[1]) is not str
                    or not _is_routable(pair[0], buckets)
                ):
                    # A tuple or str subclass, or a tag with no open bucket.
                    tag, line = pair
                    return self._continue(node, item, res, tag, line, buckets, batch)
            if rejected is not None:
                exc = rejected
        return self.fault(Stop(node, item, exc, UNSET, UNSET, UNSET, buckets, batch))

    @calls_processor
    def _continue(
        self,
        node: Node,
        item: Item,
        res: Any,
        tag: str,
        line: Any,
        buckets: dict[str, list[Item]],
        batch: Batch,
    ) -> tuple[int, int]:
        """Route the pair the fast loop stopped at, and the rest of the call, checked."""
        try:
            rest = _remaining(res, _count_owned(item, buckets) + 1, self.max_outputs)
            pairs = [(tag, line), *rest]
            check_pairs(node.name, pairs)
        except (Exception, SystemExit) as exc:
            return self.fault(Stop(node, item, exc, UNSET, UNSET, UNSET, buckets, batch))
        return self.distribute(node, item, pairs, buckets, batch, 1), 0

    def distribute(
        self,
        node: Node,
        item: Item,
        pairs: Sequence[tuple[str, str]],
        buckets: dict[str, list[Item]],
        batch: Batch,
        attempt: int,
    ) -> int:
        """Route one call's checked pairs, stopping only the unroutable branches."""
        o = item[0]
        errors = 0
        emitted = False
        for tag, line in pairs:
            bucket = buckets.get(tag)
            if bucket is not None:
                bucket.append((o, line if type(line) is str else str.__str__(line), tag, item))
                emitted = True
                continue
            exc: Exception
            if tag in self.nodes:
                exc = HopLimitExceeded(f"line passed {self.max_hops} processors (max_hops)")
            else:
                exc = UnknownTag(f"no processor for tag {tag!r}")
            errors += 1
            batch.fail(node, o, exc, line, attempt, tb=False)
            batch.dead(node, o, exc, line, tag)
            if batch.trace:
                batch.terminate(item)
        if not emitted and not errors and batch.trace:
            batch.terminate(item)
        return errors


def _raised_by_loop(exc: BaseException) -> bool:
    """Whether the loop's own frame raised `exc` (a check of a pair, a bucket lookup, a
    call that could not be made), rather than a frame of the processor under it."""
    tb = exc.__traceback__
    return tb is None or tb.tb_next is None


def _is_routable(tag: Any, buckets: dict[str, list[Item]]) -> bool:
    try:
        return tag in buckets
    except TypeError:  # unhashable
        return False


def _owned(branch: Item, item: Item) -> bool:
    """Whether `branch` was emitted by the call on `item`.

    First-wave branches have no parent item (none is built on the fast path); their
    origin tells them apart, as every line enters the first wave once.
    """
    parent = branch[3]
    if item[3] is None and item[2] == START:
        return parent is None and bool(branch[0] == item[0])
    return parent is item


def _take_back(item: Item, buckets: dict[str, list[Item]]) -> None:
    """Remove what the call on `item` emitted: its branches sit at the buckets' tails."""
    for bucket in buckets.values():
        while bucket and _owned(bucket[-1], item):
            bucket.pop()


def _count_owned(item: Item, buckets: dict[str, list[Item]]) -> int:
    count = 0
    for bucket in buckets.values():
        i = len(bucket) - 1
        while i >= 0 and _owned(bucket[i], item):
            count += 1
            i -= 1
    return count


def _remaining(res: Any, consumed: int, max_outputs: int) -> list[Any]:
    """The outputs of a call after the first `consumed` ones, at most `max_outputs`."""
    if iter(res) is res:
        rest = [*islice(res, max_outputs + 1)]
    else:
        rest = list(res[consumed:]) if isinstance(res, Sequence) else [*res][consumed:]
    if consumed + len(rest) > max_outputs:
        raise OutputRejected(OverflowError(f"more than {max_outputs} pairs (max_outputs)"))
    return rest
