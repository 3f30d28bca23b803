"""The sender of an http sink: POSTs the sink's spooled lines in batches until acknowledged.

At-least-once with no loss: a batch is recorded in `inboxd.db` before its first POST and
sent again, the same lines under the same `Idempotency-Key`, until the receiver answers
2xx; then its lines leave the spool. Every other outcome (refused, timed out, any
non-2xx) is a failure: counted on the sink board, which turns the sink (and `/health`)
degraded and so pauses reading, and retried after a back-off. Nothing is ever dropped.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import random
import sqlite3
import threading
import time
from base64 import b64encode
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from json.encoder import encode_basestring
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

import sqlite_utils

from processors.options import VERSION
from store import spool
from store.db import connect, is_shared_fault
from store.paths import from_db, shown
from store.sinkboard import SinkBoard
from store.sinkconf import SinkSpec

log = logging.getLogger("inboxd.sinks")

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
RETRY_AFTER_MAX_S = 60.0
IDLE_POLL_S = 0.5
RESPONSE_READ_MAX = 64 * 1024  # a longer answer is not read: the connection is dropped
REASON_MAX = 200
# Failures of a kept-alive connection the receiver had closed while it was idle: the
# request is tried once more on a fresh connection before it counts as a failure.
_OWN_HEADERS = frozenset({"idempotency-key", "content-length", "transfer-encoding", "host"})
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Outcome(NamedTuple):
    """What one POST came to: acknowledged, or a failure with its reason and wait."""

    ok: bool
    reason: str = ""
    retry_after: float | None = None  # seconds the receiver asked for (Retry-After)


def ndjson_body(rows: list[spool.SpoolRow]) -> bytes:
    """One `{"file", "line_no", "line"}` object a line, each ended by a newline."""
    esc = encode_basestring
    try:
        text = "".join(
            [
                f'{{"file":{"null" if f is None else esc(f)},"line_no":'
                f"{'null' if n is None else n if type(n) is int else esc(str(n))},"
                f'"line":{esc(line)}}}\n'
                for _, f, n, line in rows
            ]
        )
    except TypeError:  # a value SQLite gave back as bytes or a number (written by hand)
        text = "".join([_ndjson_line(f, n, line) for _, f, n, line in rows])
    return text.encode("utf-8", "backslashreplace")


def _ndjson_line(file: object, line_no: object, line: object) -> str:
    def text(v: object) -> object:
        if isinstance(v, bytes):
            return shown(from_db(v))
        return v if v is None or isinstance(v, str) else str(v)

    n = line_no if line_no is None or type(line_no) is int else text(line_no)
    doc = {"file": text(file), "line_no": n, "line": text(line)}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"


def retry_after_s(value: str | None, now_wall: float) -> float | None:
    """Seconds a `Retry-After` header asks for (delta seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = float(parsedate_to_datetime(value).timestamp()) - now_wall
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)


def backoff_s(failures: int, jitter: float) -> float:
    """The wait after `failures` failures in a row: 0.5 s doubling to 30 s, ±20 %."""
    base = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2.0 ** min(max(failures - 1, 0), 16))
    return min(BACKOFF_MAX_S, base * (0.8 + 0.4 * jitter))


class HttpSender:
    """Owns one http sink's sender thread: start(), idempotent stop(), join(), is_alive().

    Thread-safety: the thread opens its own connection to `inboxd.db` and its own HTTP
    connection and is their only user; other threads call nudge() and stop(), which only
    set Events, and read `error`. step() and drain() run in the calling thread instead
    (tests, `--once`); do not call them while the thread runs. If the thread dies of a
    bug, `error` holds the exception and is_alive() is false. SQLite busy or locked is
    not a bug: it is reported as the sink's failure and retried.
    """

    def __init__(
        self,
        spec: SinkSpec,
        board: SinkBoard,
        db_path: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        busy_timeout_ms: int = 5_000,
    ) -> None:
        self.spec = spec
        self.board = board
        self.db_path = db_path
        self.error: BaseException | None = None
        self.idle = False  # the last step found the spool empty
        self.steps = 0
        self._clock = clock
        self._jitter = jitter
        self._busy_ms = busy_timeout_ms
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._db: sqlite_utils.Database | None = None
        self._instance = ""
        self._primed = False
        self._conn: http.client.HTTPConnection | None = None
        self._conn_used = False
        self._failures = 0
        self._retry_at = 0.0
        self._reason: str | None = None
        url = urlsplit(spec.url)
        self._https = url.scheme == "https"
        self._host = url.hostname or ""
        self._port = url.port
        self._target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._headers = self._make_headers()

    # -- thread ownership ------------------------------------------------------------------

    def start(self) -> None:
        """Set the board's pending figure from the spool, then start the thread.

        The count is taken here, in the caller's thread, so that the daemon can start the
        senders before the processing thread spools anything.
        """
        if self._thread is not None:
            return
        self._prime_now()
        name = f"inboxd-sink-{self.spec.name}"
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end after its current attempt; safe to call repeatedly."""
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def nudge(self) -> None:
        """New lines were committed to the spool: look now rather than at the next poll."""
        self._wake.set()

    def _main(self) -> None:
        try:
            while not self._stop.is_set():
                delay = self.step(self._clock())
                if self._stop.is_set():
                    break
                if delay > 0:
                    self._wake.wait(delay)
        except BaseException as exc:
            self.error = exc
            log.critical("http sink %s sender died: %s", self.spec.name, exc, exc_info=True,
                         extra={"event": "thread_died", "sink": self.spec.name})  # fmt: skip
        finally:
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
            return self._failed(now, Outcome(False, _short(f"database: {exc}")))

    def _attempt(self, now: float) -> float:
        db = self._database()
        if not self._primed:
            self.board.set_pending(self.spec.name, spool.pending_count(db, self.spec.name))
            self._primed = True
        taken = spool.take_batch(db, self.spec.name, self.spec.batch, self._instance)
        if taken is None:
            self.idle = True
            self._recovered()  # a database fault may have been the last word
            return IDLE_POLL_S
        self.idle = False
        batch, rows = taken
        if not rows:  # its lines are gone (deleted by hand): nothing is left to send
            spool.forget_batch(db, self.spec.name)
            return 0.0
        outcome = self._post(ndjson_body(rows), batch.key)
        if not outcome.ok:
            return self._failed(now, outcome)
        sent = spool.ack_batch(db, batch)
        self.board.delivered(self.spec.name, sent)
        self.board.add_pending(self.spec.name, -sent)
        self._recovered()
        return 0.0

    def _recovered(self) -> None:
        if self._reason is not None:
            self.board.recovered(self.spec.name)
            log.info("http sink %s delivers again", self.spec.name,
                     extra={"event": "sink_recovered", "sink": self.spec.name})  # fmt: skip
        self._failures, self._retry_at, self._reason = 0, 0.0, None

    def _failed(self, now: float, outcome: Outcome) -> float:
        self._failures += 1
        self.board.failed(self.spec.name, outcome.reason)
        if outcome.reason != self._reason:
            log.warning("http sink %s: %s; retrying", self.spec.name, outcome.reason,
                        extra={"event": "sink_failed", "sink": self.spec.name})  # fmt: skip
            self._reason = outcome.reason
        if outcome.retry_after is not None:
            delay = max(outcome.retry_after, BACKOFF_MIN_S)
        else:
            delay = backoff_s(self._failures, self._jitter())
        self._retry_at = now + delay
        return delay

    def drain(self, timeout: float) -> bool:
        """Send until this sink's spool is empty (`--once`); False if `timeout` ran out.

        Lines not delivered stay spooled for the next start. A POST in flight may run
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

    # -- HTTP ------------------------------------------------------------------------------

    def _make_headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/x-ndjson",
            "User-Agent": f"inboxd/{VERSION}",
        }
        url = urlsplit(self.spec.url)
        if url.username is not None:  # http://user:password@host/: basic authentication
            user = unquote(url.username) + ":" + unquote(url.password or "")
            headers["Authorization"] = "Basic " + b64encode(user.encode()).decode("ascii")
        for name, value in self.spec.headers:
            if name.lower() in _OWN_HEADERS:
                continue  # the sender's own: a configured value would break the request
            for have in [h for h in headers if h.lower() == name.lower()]:
                del headers[have]
            headers[name] = value
        return headers

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = kind(self._host, self._port, timeout=self.spec.timeout)
            self._conn_used = False
        return self._conn

    def _post(self, body: bytes, key: str) -> Outcome:
        """POST one batch; a kept-alive connection found closed is retried once, fresh."""
        headers = {**self._headers, "Idempotency-Key": key}
        for _ in range(2):
            reused = self._conn is not None and self._conn_used
            try:
                return self._request(body, headers)
            except _STALE as exc:
                self._close_http()
                if not reused:
                    return Outcome(False, _short(f"{type(exc).__name__}: {exc}"))
            except (OSError, http.client.HTTPException) as exc:
                self._close_http()
                return Outcome(False, _short(f"{type(exc).__name__}: {exc}"))
        return Outcome(False, "connection closed by the receiver")

    def _request(self, body: bytes, headers: dict[str, str]) -> Outcome:
        conn = self._connection()
        conn.request("POST", self._target, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read(RESPONSE_READ_MAX)
        if not resp.isclosed() or resp.will_close:
            self._close_http()  # an answer too long to read, or the receiver closes
        else:
            self._conn_used = True
        if 200 <= resp.status < 300:
            return Outcome(True)
        wait = None
        if resp.status in (429, 503):
            wait = retry_after_s(resp.getheader("Retry-After"), time.time())
        return Outcome(False, _short(f"HTTP {resp.status} {resp.reason}".strip()), wait)

    # -- resources -------------------------------------------------------------------------

    def _prime_now(self) -> None:
        """Set the pending figure with a short-lived connection of the calling thread."""
        try:
            db = connect(self.db_path)
            try:
                db.conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
                self.board.set_pending(self.spec.name, spool.pending_count(db, self.spec.name))
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
                self._instance = spool.instance_id(db)
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

    def _close_http(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Close the database and HTTP connections (of the thread that used them)."""
        self._close_http()
        self._close_db()


def _short(reason: str) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= REASON_MAX else reason[: REASON_MAX - 1] + "…"
