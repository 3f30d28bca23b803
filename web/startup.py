"""The one human line the daemon prints on stderr once it serves."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TextIO

from cli.settings import VERSION, Settings

WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def dashboard_url(host: str, port: int) -> str:
    """The address a browser on this machine opens (a wildcard bind is shown as loopback)."""
    shown = "127.0.0.1" if host in WILDCARD_HOSTS else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def startup_line(settings: Settings, port: int) -> str:
    """`inboxd 0.1.0: inbox <dir>, outbox <dir>, state <dir>, dashboard <url>`."""

    def shown(path: Path) -> str:
        return str(path.resolve())

    return (
        f"inboxd {VERSION}: inbox {shown(settings.inbox)}, outbox {shown(settings.outbox)}, "
        f"state {shown(settings.state_dir)}, dashboard {dashboard_url(settings.host, port)}"
    )


def announce(settings: Settings, port: int, stream: TextIO | None = None) -> None:
    """Print the start-up line; a closed or broken stderr is no reason to fail."""
    out = stream if stream is not None else sys.stderr
    with contextlib.suppress(OSError, ValueError):
        print(startup_line(settings, port), file=out, flush=True)
