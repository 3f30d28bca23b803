"""Operations end to end: how long to wait for a condition and for a daemon to start.

Shared by the operations tests and the history tests, which both run `daemon.py` as a
user runs it and poll every condition with a deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from net_fixtures import wait_for as wait_within

WAIT_S = 15.0
OPS_START_TIMEOUT_S = 20.0


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    return wait_within(condition, timeout, what)


def append(path: Path, lines: list[str]) -> None:
    """Append whole lines to `path`, making its folder first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))
