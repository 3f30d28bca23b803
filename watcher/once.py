"""`--once`: read everything the inbox holds now, deliver it, flush, print the figures."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from cli.settings import VERSION, Settings
from processors.router import Router
from store.flush import flush_once
from store.live.telemetry import Telemetry
from watcher.engine import Engine
from watcher.reading.faults import SharedFault

if TYPE_CHECKING:
    from sinks.senders import Senders

EXIT_FAILURE = 1
# How long --once waits for its sink senders to end.
SENDERS_JOIN_S = 15.0


def make_senders(settings: Settings, telemetry: Telemetry) -> Senders:
    """The sender threads of the spooled sinks of `settings` (none started)."""
    from processors.batch import Keeper
    from sinks.base import SenderContext
    from sinks.senders import Senders  # clients and threads only with spooled sinks

    keeper = Keeper(settings.keep_lines)
    ctx = SenderContext(telemetry.sinks, settings.db_path, VERSION,
                        keep_line=lambda line: keeper.line(line, whole=True))  # fmt: skip
    return Senders(settings.sinks, ctx)


def run_once(settings: Settings, router: Router, telemetry: Telemetry) -> int:
    """One pass over the inbox with `router`; the process's exit code."""
    senders = make_senders(settings, telemetry)
    engine = Engine(settings=settings, router=router, telemetry=telemetry,
                    on_spool=senders.nudge if senders else None)  # fmt: skip
    senders.start()
    try:
        engine.run_once()
        undelivered = senders.wait_delivered()
    except SharedFault as fault:
        print(f"inboxd: stopped, nothing lost (run again): {fault.reason}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        senders.stop()
        senders.join(SENDERS_JOIN_S)
    flush_once(telemetry, settings.db_path, settings.retention_days)
    if undelivered:
        print(f"inboxd: sink {', '.join(undelivered)} failing; its lines stay spooled for the "
              "next run", file=sys.stderr)  # fmt: skip
        print(json.dumps(telemetry.stats()))
        return EXIT_FAILURE
    print(json.dumps(telemetry.stats()))
    return 0
