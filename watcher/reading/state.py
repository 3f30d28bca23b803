"""Opening the state: the checkpoints, the outbox cut back to them, what was in flight."""

from __future__ import annotations

import contextlib
import logging

from cli.settings import Settings
from sinks.outbox import recover
from store.checkpoints import CheckpointStore, OutboxState, TrackedFile
from watcher.reading.faults import as_shared
from watcher.reading.poison import PoisonGuard

log = logging.getLogger("inboxd.engine")


def open_state(
    s: Settings,
) -> tuple[CheckpointStore, dict[tuple[int, int], TrackedFile], OutboxState, PoisonGuard]:
    """Open the checkpoints, cut the outbox back to them, read what was in flight.

    Faults of the disk or the database come out as SharedFault.
    """
    with contextlib.suppress(OSError):  # a missing inbox is the watcher's to report
        s.inbox.mkdir(parents=True, exist_ok=True)
    try:
        s.outbox.mkdir(parents=True, exist_ok=True)
        store = CheckpointStore(s.db_path)
    except Exception as exc:
        shared = as_shared(exc, "opening the state")
        if shared is None:
            raise
        raise shared from exc
    try:
        files, outbox = store.load()
        for rel, was, now in recover(s.outbox, outbox.sizes, outbox.ids):
            log.warning(
                "outbox cut back to its committed size",
                extra={"event": "outbox_recovered", "file": rel, "from": was, "to": now},
            )
        guard = PoisonGuard.open(s.state_dir, store, files, s.poison_after)
    except Exception as exc:
        store.close()
        shared = as_shared(exc, "outbox recovery")
        if shared is None:
            raise
        raise shared from exc
    return store, files, outbox, guard
