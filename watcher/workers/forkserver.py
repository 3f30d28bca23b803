"""The server process that worker processes fork from, and its early start.

Starting the server costs a Python start and the worker's imports (about 0.1 s). When
`daemon.py` starts it before importing the rest of itself, that time overlaps the
daemon's own imports on the other core instead of delaying the first routed chunk.
This module imports nothing heavy for that reason.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import multiprocessing.forkserver
import tempfile
from pathlib import Path
from typing import Any

from cli.settings import settings_from
from processors.errors import ConfigError

# The module the server imports before it forks any worker.
PRELOAD = ["watcher.workers.child"]
# Names the daemon runs under: `python daemon.py` and the `inboxd` script.
PROGRAM_NAMES = {"daemon.py", "inboxd"}


def worker_context() -> Any:
    """Workers fork from a server process that has imported only the worker's modules.

    The server is started (spawned, so it inherits none of the daemon's threads) by
    start_early() or with the first worker; each worker, and any restart, is then a
    fork of it.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def start_early(program: str, argv: list[str]) -> bool:
    """Start the server now if this is the daemon and its settings ask for workers.

    Settings are read quietly: a bad option or config is reported by main(), once, and
    a subcommand (`inboxd check ...`) is not an option of the daemon's, so it starts
    nothing either. Returns whether the server was started.
    """
    if Path(program).name not in PROGRAM_NAMES:
        return False
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            settings = settings_from(argv)
    except (Exception, SystemExit):  # whatever it is, main() reads them again and says it
        return False
    if settings.workers < 2:
        return False
    try:
        ensure_server()
    except ConfigError:  # main() says it
        return False
    return True


def ensure_server() -> None:
    """Start the server unless it runs; ConfigError naming the problem when it cannot.

    The server listens on a socket in a new folder under the temporary folder
    (TMPDIR): a folder that cannot be written, or whose path is too long for a socket's
    address (108 bytes), stops it.
    """
    worker_context()
    try:
        multiprocessing.forkserver.ensure_running()
    except OSError as exc:
        raise ConfigError(
            f"workers: cannot start the worker processes: {exc.strerror or exc} "
            f"(temporary folder {tempfile.gettempdir()}; TMPDIR sets it)"
        ) from exc
