"""What /health reports: named checks, each ok, degraded or failing, with a reason.

Thread-safety: any thread sets its own checks (the engine "engine", "disk", "database";
the flusher "database"...); readers take a snapshot. A check set by several owners keeps
one entry per owner and shows the worst of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from store.live.figures import Figure, health_figures

OK, DEGRADED, FAILING = "ok", "degraded", "failing"
_RANK = {OK: 0, DEGRADED: 1, FAILING: 2}
CHECKS = ("engine", "disk", "database", "watcher", "sinks")


class HealthBoard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # check -> owner -> (status, reason, since, details)
        self._checks: dict[str, dict[str, tuple[str, str | None, float, dict[str, Any]]]] = {}

    def set(
        self,
        check: str,
        status: str,
        reason: str | None = None,
        *,
        owner: str = "",
        details: dict[str, Any] | None = None,
    ) -> bool:
        """Set one owner's view of a check; True when its status or reason changed."""
        with self._lock:
            owners = self._checks.setdefault(check, {})
            old = owners.get(owner)
            since = old[2] if old is not None and old[0] == status else time.time()
            owners[owner] = (status, reason, since, details or {})
            return old is None or old[0] != status or old[1] != reason

    def ok(self, check: str, *, owner: str = "") -> bool:
        return self.set(check, OK, None, owner=owner)

    def status_of(self, check: str) -> str:
        return str(self.snapshot().get(check, {}).get("status", OK))

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every check (the known ones first), each with its worst owner's status."""
        with self._lock:
            copied = {k: dict(v) for k, v in self._checks.items()}
        out: dict[str, dict[str, Any]] = {}
        for check in (*CHECKS, *sorted(set(copied) - set(CHECKS))):
            owners = copied.get(check, {})
            worst = max(owners.values(), key=lambda e: _RANK[e[0]], default=(OK, None, 0.0, {}))
            doc: dict[str, Any] = {"status": worst[0]}
            if worst[0] != OK:
                doc["reason"] = worst[1]
                doc["since"] = worst[2]
                doc.update(worst[3])
            out[check] = doc
        return out

    def collect(self) -> Iterator[Figure]:
        """The /metrics figure of every check's status."""
        return health_figures(self.snapshot())

    def overall(self, checks: dict[str, dict[str, Any]] | None = None) -> str:
        checks = self.snapshot() if checks is None else checks
        return max((c["status"] for c in checks.values()), key=_RANK.__getitem__, default=OK)
