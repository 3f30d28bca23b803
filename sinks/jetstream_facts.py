"""Values the JetStream client takes and returns, and how server answers map onto them.

Kept apart from the client so callers and tests can build and compare these plain
frozen values without an event loop; nothing here holds state, so all of it is
thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Published.kind values.
OK = ""
TOO_LARGE = "too_large"
STREAM_FULL = "stream_full"
NO_STREAM = "no_stream"
TIMEOUT = "timeout"
DISCONNECTED = "disconnected"
OTHER = "other"

# JetStream API error codes (err_code) this module tells apart.
ERR_MSG_TOO_LARGE = 10054  # larger than the stream's max_msg_size
ERR_STREAM_NOT_FOUND = 10059
ERR_STREAM_MISMATCH = 10060  # subject is stored by another stream than Nats-Expected-Stream
ERR_STREAM_NAME_IN_USE = 10058  # create with a config other than the existing stream's
ERR_NO_MESSAGE = 10037
ERR_STORE_FAILED = 10077  # "maximum messages exceeded" and the like under discard=new
ERR_STORAGE_EXHAUSTED = 10047  # the account or server has no storage left

_FULL_WORDS = ("maximum messages", "maximum bytes", "insufficient", "resources exceeded")

HDR_LINE = b"NATS/1.0\r\n"


@dataclass(frozen=True, slots=True)
class NatsAuth:
    """How to authenticate to the server; every field optional, paths are read at connect."""

    user: str | None = None
    password: str | None = None
    token: str | None = None
    credentials: str | None = None  # path of a .creds file (needs the nkeys package)
    nkey_seed: str | None = None  # path of an nkey seed file (needs the nkeys package)
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One line to publish: the server drops a second copy of `msg_id` within the window."""

    subject: str
    payload: bytes
    msg_id: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Published:
    """The outcome of one Message: ok when stored, or dropped as a duplicate of a stored one."""

    ok: bool
    duplicate: bool = False
    seq: int | None = None
    error: str = ""
    kind: str = OK


@dataclass(frozen=True, slots=True)
class StreamFacts:
    """What the caller checks of a stream before sending to it (sizes in bytes)."""

    name: str
    subjects: tuple[str, ...]
    duplicate_window_s: float
    max_msg_size: int  # -1 when unlimited
    discard: str  # "old" | "new"
    max_payload: int  # the server's max_payload from the connection INFO
    messages: int = 0
    last_seq: int = 0


class JetStreamError(Exception):
    """A failure of a whole call: `kind` is connect, auth, no_stream, timeout or other."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(one_line(message))
        self.kind = kind


def one_line(text: str) -> str:
    """`text` with its whitespace runs (newlines included) folded into single spaces."""
    return " ".join(str(text).split())


def enum_text(value: Any) -> str:
    """The plain text of a str enum member or of a str (nats-py returns either)."""
    return str(getattr(value, "value", value))


def headers_size(headers: dict[str, str]) -> int:
    """Bytes the header block of `headers` takes on the wire, or a few more (the server
    counts them into max_payload together with the payload)."""
    size = len(HDR_LINE) + 2
    for key, value in headers.items():
        size += len(key) + len(value) + 4
        if not (key.isascii() and value.isascii()):
            size += len(key.encode()) - len(key) + len(value.encode()) - len(value)
    return size


def ack_outcome(data: bytes, loads: Any) -> Published:
    """The Published for a PubAck body (JSON): stored, duplicate, or the server's error."""
    try:
        reply = loads(data)
        if not isinstance(reply, dict):
            raise ValueError("not an object")
    except ValueError:
        return Published(False, error=f"nats: unreadable PubAck {data[:80]!r}", kind=OTHER)
    error = reply.get("error")
    if error is None:
        return Published(True, duplicate=bool(reply.get("duplicate")), seq=reply.get("seq"))
    err_code = error.get("err_code") if isinstance(error, dict) else None
    text = error.get("description", "") if isinstance(error, dict) else str(error)
    return Published(
        False,
        error=one_line(f"nats: {text} (err_code {err_code})"),
        kind=error_kind(err_code, text),
    )


def error_kind(err_code: int | None, description: str) -> str:
    """The Published.kind of a JetStream publish error."""
    text = (description or "").lower()
    if err_code == ERR_MSG_TOO_LARGE:
        return TOO_LARGE
    if err_code in (ERR_STREAM_NOT_FOUND, ERR_STREAM_MISMATCH):
        return NO_STREAM
    if err_code == ERR_STORAGE_EXHAUSTED or any(word in text for word in _FULL_WORDS):
        return STREAM_FULL
    return OTHER


def no_stream_for(subject: str) -> Published:
    """The Published for a publish nobody answered: no stream stores `subject`."""
    return Published(False, error=f"nats: no stream stores subject {subject}", kind=NO_STREAM)


def too_large(size: int, max_payload: int) -> Published:
    """The Published for a message not sent because the server would refuse its size."""
    return Published(
        False,
        error=f"nats: message of {size} bytes (headers included) over max_payload {max_payload}",
        kind=TOO_LARGE,
    )
