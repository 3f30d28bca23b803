"""The `http` sink: the spool POSTed in NDJSON batches, each under an `Idempotency-Key`.

At-least-once with no loss (sinks/sender.py): a batch is sent again, the same lines
under the same key, until the receiver answers 2xx. Every other answer (refused, timed
out, any non-2xx) is a failure, retried after a back-off or the receiver's
`Retry-After`. A receiver that drops repeats by key gets every line exactly once.
"""

from __future__ import annotations

import http.client
import json
import time
from base64 import b64encode
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from sinks import spool
from sinks.base import SenderContext, SinkContext, SinkSpec
from sinks.config import int_in, seconds_in, shown_url
from sinks.sender import Outcome, SpoolSender, short
from sinks.spooled import SpooledSink
from store.errors import ConfigError
from store.live.sinkboard import SinkBoard
from store.paths import from_db, shown

RETRY_AFTER_MAX_S = 60.0
RESPONSE_READ_MAX = 64 * 1024  # a longer answer is not read: the connection is dropped
# Failures of a kept-alive connection the receiver had closed while it was idle: the
# request is tried once more on a fresh connection before it counts as a failure.
_OWN_HEADERS = frozenset({"idempotency-key", "content-length", "transfer-encoding", "host"})
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


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


@dataclass(frozen=True, slots=True)
class HttpSpec(SinkSpec):
    KEYS: ClassVar[tuple[str, ...]] = ("type", "url", "batch", "timeout", "headers", "max_pending")
    SPOOLED: ClassVar[bool] = True

    url: str = ""
    batch: int = 500  # lines per POST
    timeout: float = 5.0
    pending_limit: int = 100_000
    headers: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def parse(cls, name: str, table: dict[str, Any], where: str) -> HttpSpec:
        url = table.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"{where} url: expected an http:// or https:// URL, got {url!r}")
        if not urlsplit(url).hostname:
            raise ConfigError(f"{where} url: no host in {url!r}")
        batch = int_in(table.get("batch", 500), f"{where} batch", 1, 100_000)
        max_pending = int_in(table.get("max_pending", 100_000), f"{where} max_pending", 1, 10**9)
        timeout = seconds_in(table.get("timeout", 5), f"{where} timeout", 0, 600)
        headers = table.get("headers", {})
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and "\n" not in k + v
            for k, v in headers.items()
        ):
            raise ConfigError(f"{where} headers: expected a table of strings, got {headers!r}")
        limit = max(max_pending, batch)
        return cls(name, "http", url=url, batch=batch, timeout=timeout, pending_limit=limit,
                   headers=tuple(headers.items()))  # fmt: skip

    @property
    def max_pending(self) -> int:
        return self.pending_limit

    def describe(self, outbox: str, state_dir: str) -> str:
        url = shown_url(self.url)
        return f"http sink POST {url}, {self.batch} lines a batch (at-least-once)"

    def build(self, ctx: SinkContext) -> SpooledSink:
        return SpooledSink(self, ctx)

    def sender(self, ctx: SenderContext) -> SpoolSender:
        return http_sender(self, ctx.board, ctx.db_path, version=ctx.version,
                           keep_line=ctx.keep_line)  # fmt: skip


def http_sender(
    spec: HttpSpec, board: SinkBoard, db_path: Path, *, version: str = "", **options: Any
) -> SpoolSender:
    """The sender thread of an http sink (`options`: SpoolSender's keywords)."""
    transport = HttpTransport(spec, version)
    return SpoolSender(spec.name, "http", spec.batch, transport, board, db_path, **options)


class HttpTransport:
    """POSTs batches over one kept-alive connection; the sender thread's only."""

    def __init__(self, spec: HttpSpec, version: str = "") -> None:
        self.spec = spec
        self.version = version
        self._conn: http.client.HTTPConnection | None = None
        self._conn_used = False
        url = urlsplit(spec.url)
        self._https = url.scheme == "https"
        self._host = url.hostname or ""
        self._port = url.port
        self._target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._headers = self._make_headers()

    def send(self, batch: spool.SpoolBatch, rows: list[spool.SpoolRow], instance: str) -> Outcome:
        return self._post(ndjson_body(rows), batch.key)

    def idle(self) -> None:
        """A kept-alive connection needs nothing while idle."""

    def close(self) -> None:
        self._close_http()

    def _make_headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/x-ndjson",
            "User-Agent": f"inboxd/{self.version}" if self.version else "inboxd",
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
                    return Outcome(False, short(f"{type(exc).__name__}: {exc}"))
            except (OSError, http.client.HTTPException) as exc:
                self._close_http()
                return Outcome(False, short(f"{type(exc).__name__}: {exc}"))
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
        return Outcome(False, short(f"HTTP {resp.status} {resp.reason}".strip()), wait)

    def _close_http(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
