"""What the routing thread is in: the processor call in flight, read off its stack.

The router's loops keep the processor, the batch (file, first line number) and the
line's place in it in locals named in processors.contract, which a frame exposes to
another thread. Sampling them costs the hot path nothing.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from types import FrameType
from typing import Any

import processors.router as router_module
from processors.contract import BATCH, ITEM, NODE, ORIGIN

# The router and the loops it runs live in this folder; user code and the built-ins
# have no NODE and BATCH locals.
_ROUTER_DIR = os.path.dirname(router_module.__file__)


@dataclass(frozen=True, slots=True)
class CurrentCall:
    """The processor call the engine thread is in."""

    processor: str
    file: str | None
    line_no: int | None
    call: tuple[int, int, int]  # identifies the call: (batch, node, line)


def current_call(thread_id: int | None) -> CurrentCall | None:
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


def _from_locals(local: dict[str, Any]) -> CurrentCall | None:
    node, batch = local.get(NODE), local.get(BATCH)
    if node is None or batch is None:
        return None
    origin = local.get(ORIGIN)
    if not isinstance(origin, int):
        item = local.get(ITEM)
        origin = item[0] if isinstance(item, tuple) and item and isinstance(item[0], int) else None
    first = getattr(batch, "first_line_no", None)
    line_no = first + origin if isinstance(first, int) and origin is not None else None
    name = str(getattr(node, "name", "?"))
    return CurrentCall(name, getattr(batch, "file", None), line_no,
                    (id(batch), id(node), -1 if origin is None else origin))  # fmt: skip
