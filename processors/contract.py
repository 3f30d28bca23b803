"""What the router's modules share: the names its loops keep a call in, and the markers.

processors.current tells which line the routing thread is on by reading the locals of
its frames, from another thread (the stall watch, a worker's sampler for poison lines).
A frame of a loop that calls a processor holds the processor in `NODE` and the batch in
`BATCH` (file, first line number), and the line's place in the batch either in `ORIGIN`
(an int) or as the first field of the branch in `ITEM`. Sampling them costs the loops
nothing; renaming one of those locals would silently drop the line from stall reports.

Python cannot name a local after a constant, so every function that calls a processor
is marked `@calls_processor`, which checks at import that its code has the names (the
import fails otherwise). tests/test_current_call.py runs each of them and checks the line.

This module imports nothing of inboxd's: the router, its loops, their recovery and
processors.current all import it, and it imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

NODE = "node"
BATCH = "batch"
ORIGIN = "o"
ITEM = "item"

# The fast loops' variables before they hold a pair of the current call (set again after
# every fault, so that processors.checked never takes an earlier call's pair for its own).
UNSET: Any = object()
# Results that iterate but are not collections of pairs: taking them as such would
# route their characters, bytes or keys.
NOT_PAIRS = (str, bytes, bytearray, memoryview, dict, set, frozenset)

F = TypeVar("F", bound=Callable[..., Any])


def calls_processor(fn: F) -> F:
    """Check that `fn` keeps its call in the locals processors.current reads; `fn` itself back."""
    names = set(fn.__code__.co_varnames)
    missing = {NODE, BATCH} - names
    if missing or not {ORIGIN, ITEM} & names:
        raise TypeError(
            f"{fn.__qualname__} calls a processor without the locals processors.current "
            f"reads: missing {sorted(missing) or [ORIGIN + ' or ' + ITEM]}"
        )
    return fn
