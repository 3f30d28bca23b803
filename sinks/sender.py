"""The sender thread of a spooled sink: delivers the spool in batches until acknowledged.

At-least-once with no loss, the same for every transport (http POST, nats publish): a
batch is recorded in `inboxd.db` before its first attempt and sent again, the same
lines under the same key, until the transport says it was taken; then its lines leave
the spool. Every other outcome is a failure: counted on the sink board, which turns the
sink (and `/health`) degraded and so pauses reading, and retried after a back-off.
Nothing is ever dropped; a line the receiver can never take (too large for a server)
becomes a dead letter naming the sink, in the transaction that deletes its batch.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, Protocol

import sqlite_utils

from sinks import spool
from store.db import connect, is_shared_fault
from store.live.sinkboard import SinkBoard
from store.records import DeadLetter
from store.service import Service

log = logging.getLogger("inboxd.sinks")

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
IDLE_POLL_S = 0.5
REASON_MAX = 200


class Outcome(NamedTuple):
    """What one attempt at a batch came to: taken, or a failure with its reason and wait."""

    ok: bool
    reason: str = ""
    retry_after: float | None = None  # seconds the receiver asked for
    # Lines of a taken batch that can never be delivered: (spool id, message).
    dead: tuple[tuple[int, str], ...] = ()


class Transport(Protocol):
    """How a batch leaves: one attempt, in the sender's thread."""

    def send(self, batch: spool.SpoolBatch, rows: list[spool.SpoolRow], instance: str) -> Outcome:
        """One attempt at `batch` (`instance`: the state database's identity)."""
        ...

    def idle(self) -> None:
        """The spool is empty: keep the connection alive (answer a server's pings)."""
        ...

    def close(self) -> None: ...


def backoff_s(failures: int, jitter: float) -> float:
    """The wait after `failures` failures in a row: 0.5 s doubling to 30 s, ±20 %."""
    base = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2.0 ** min(max(failures - 1, 0), 16))
    return min(BACKOFF_MAX_S, base * (0.8 + 0.4 * jitter))


def short(reason: str) -> str:
    """One line of at most REASON_MAX characters."""
    reason = " ".join(reason.split())
    return reason if len(reason) <= REASON_MAX else reason[: REASON_MAX - 1] + "…"


class SpoolSender(Service):
    """Owns one spooled sink's sender thread (a Service): delivers the spool until stopped.

    Thread-safety: the thread opens its own connection to `inboxd.db`, and the transport
    its own connection to the receiver; it is their only user. Other threads call
    nudge() and stop(), which only set Events, and read `error`. step() and drain() run
    in the calling thread instead (tests, `--once`); do not call them while the thread
    runs. If the thread dies of a bug, `error` holds the exception and is_alive() is
    false. SQLite busy or locked is not a bug: it is the sink's failure, retried.
    """

    def __init__(
        self,
        name: str,
        kind: str,
        batch_size: int,
        transport: Transport,
        board: SinkBoard,
        db_path: Path,
        *,
        keep_line: Callable[[str], str | None] = lambda line: line,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        busy_timeout_ms: int = 5_000,
    ) -> None:
        super().__init__(name, thread_name=f"inboxd-sink-{name}")
        self.kind = kind
        self.batch_size = batch_size
        self.transport = transport
        self.board = board
        self.db_path = db_path
        self.keep_line = keep_line
        self.idle = False  # the last step found the spool empty
        self.steps = 0
        self.instance = ""
        self._clock = clock
        self._jitter = jitter
        self._busy_ms = busy_timeout_ms
        self._wake = threading.Event()
        self._db: sqlite_utils.Database | None = None
        self._primed = False
        self._failures = 0
        self._retry_at = 0.0
        self._reason: str | None = None

    # -- thread ownership ------------------------------------------------------------------

    def start(self) -> None:
        """Set the board's pending figure from the spool, then start the thread.

        The count is taken here, in the caller's thread, so that the daemon can start the
        senders before the processing thread spools anything.
        """
        if self.is_started or self.is_stopping:
            return
        self._prime_now()
        super().start()

    def on_stop(self) -> None:
        self._wake.set()  # a sender waiting out a back-off ends now

    def nudge(self) -> None:
        """New lines were committed to the spool: look now rather than at the next poll."""
        self._wake.set()

    def run(self) -> None:
        while not self._stop.is_set():
            delay = self.step(self._clock())
            if self._stop.is_set():
                break
            if delay > 0:
                self._wake.wait(delay)

    def on_error(self, exc: BaseException) -> None:
        log.critical("%s sink %s sender died: %s", self.kind, self.name, exc, exc_info=exc,
                     extra={"event": "thread_died", "sink": self.name})  # fmt: skip

    def on_exit(self) -> None:
        self.close()

    # -- running ---------------------------------------------------------------------------

    def step(self, now: float) -> float:
        """One attempt: send the recorded batch, or take and record the next one and send it.

        Returns the seconds to wait before the next step: 0 after a delivery, the poll
        interval when the spool is empty, the back-off (or what's left of it) after a
        failure.
        """
        self._wake.clear()  # before reading, so that a nudge after the read is kept
        self.steps += 1
        if now < self._retry_at:
            return self._retry_at - now
        try:
            return self._attempt(now)
        except (sqlite3.Error, OSError) as exc:
            if isinstance(exc, sqlite3.Error) and not is_shared_fault(exc):
                raise
            self._close_db()
            return self._failed(now, Outcome(False, short(f"database: {exc}")))

    def _attempt(self, now: float) -> float:
        db = self._database()
        if not self._primed:
            self.board.set_pending(self.name, spool.pending_count(db, self.name))
            self._primed = True
        taken = spool.take_batch(db, self.name, self.batch_size, self.instance)
        if taken is None:
            self.idle = True
            self.transport.idle()
            self._recovered()  # a database fault may have been the last word
            return IDLE_POLL_S
        self.idle = False
        batch, rows = taken
        if not rows:  # its lines are gone (deleted by hand): nothing is left to send
            spool.forget_batch(db, self.name)
            return 0.0
        outcome = self.transport.send(batch, rows, self.instance)
        if not outcome.ok:
            return self._failed(now, outcome)
        dead = self._dead_letters(rows, outcome.dead)
        sent = spool.ack_batch(db, batch, dead)
        if dead:
            self.board.rejected(self.name, len(dead))
        self.board.delivered(self.name, sent - len(dead))
        self.board.add_pending(self.name, -sent)
        self._recovered()
        return 0.0

    def _dead_letters(
        self, rows: list[spool.SpoolRow], dead: tuple[tuple[int, str], ...]
    ) -> list[DeadLetter]:
        if not dead:
            return []
        by_id = {row[0]: row for row in rows}
        letters: list[DeadLetter] = []
        now = time.time()
        for row_id, message in dead:
            _, file, line_no, line = by_id[row_id]
            kept = self.keep_line(line)
            letters.append(DeadLetter(now, file, line_no, self.name, f"sink {self.name}",
                                      message, "" if kept is None else kept))  # fmt: skip
            log.error("%s sink %s: line dead-lettered: %s", self.kind, self.name, message,
                      extra={"event": "sink_deadletter", "sink": self.name, "file": file,
                             "line_no": line_no})  # fmt: skip
        return letters

    def _recovered(self) -> None:
        if self._reason is not None:
            self.board.recovered(self.name)
            log.info("%s sink %s delivers again", self.kind, self.name,
                     extra={"event": "sink_recovered", "sink": self.name})  # fmt: skip
        self._failures, self._retry_at, self._reason = 0, 0.0, None

    def _failed(self, now: float, outcome: Outcome) -> float:
        self._failures += 1
        self.board.failed(self.name, outcome.reason)
        if outcome.reason != self._reason:
            log.warning("%s sink %s: %s; retrying", self.kind, self.name, outcome.reason,
                        extra={"event": "sink_failed", "sink": self.name})  # fmt: skip
            self._reason = outcome.reason
        if outcome.retry_after is not None:
            delay = max(outcome.retry_after, BACKOFF_MIN_S)
        else:
            delay = backoff_s(self._failures, self._jitter())
        self._retry_at = now + delay
        return delay

    def drain(self, timeout: float) -> bool:
        """Send until this sink's spool is empty (`--once`); False if `timeout` ran out.

        Lines not delivered stay spooled for the next start. An attempt in flight may run
        past the deadline by up to the sink's timeout. Closes the connections at the end.
        """
        deadline = self._clock() + timeout
        try:
            while not self._stop.is_set():
                now = self._clock()
                delay = self.step(now)
                if self.idle:
                    return True
                left = deadline - self._clock()
                if left <= 0:
                    return False
                if delay > 0:
                    self._stop.wait(min(delay, left))
            return False
        finally:
            self.close()

    # -- resources -------------------------------------------------------------------------

    def _prime_now(self) -> None:
        """Set the pending figure with a short-lived connection of the calling thread."""
        try:
            db = connect(self.db_path)
            try:
                db.conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
                self.board.set_pending(self.name, spool.pending_count(db, self.name))
                self._primed = True
            finally:
                db.close()
        except (sqlite3.Error, OSError) as exc:
            if isinstance(exc, sqlite3.Error) and not is_shared_fault(exc):
                raise
            # The thread counts on its first step instead.

    def _database(self) -> sqlite_utils.Database:
        if self._db is None:
            db = connect(self.db_path)
            try:
                db.conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
                self.instance = spool.instance_id(db)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _close_db(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def close(self) -> None:
        """Close the database and the transport's connections (of the thread that used
        them)."""
        self.transport.close()
        self._close_db()
