"""End to end: writing lines into a running daemon's inbox and waiting for its outbox.

Shared by the file-handling and the HTTP API end-to-end tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_fixtures import Daemon, read_outbox
from net_fixtures import wait_for


def append(path: Path, lines: list[str], *, end: str = "\n") -> None:
    """Append lines, each ended by `end`, to `path`, making its folder first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8", newline="") as fh:
        fh.write("".join(line + end for line in lines))


def wait_outbox(daemon: Daemon, rel: str, expected: list[str], timeout: float = 20.0) -> None:
    """Wait until outbox/<rel> holds exactly `expected`; fail with the difference."""

    def done() -> bool:
        return read_outbox(daemon.outbox).get(rel, []) == expected

    if not _poll(done, timeout):
        got = read_outbox(daemon.outbox).get(rel, [])
        missing = Counter(expected) - Counter(got)
        extra = Counter(got) - Counter(expected)
        pytest.fail(
            f"outbox/{rel}: {len(got)} lines, expected {len(expected)}; "
            f"missing {list(missing)[:5]}, extra {list(extra)[:5]}\n{daemon.stderr()}"
        )


def _poll(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether `condition` came true within `timeout` seconds."""
    try:
        wait_for(condition, timeout)
    except pytest.fail.Exception:
        return False
    return True
