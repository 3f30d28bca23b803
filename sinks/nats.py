"""The `nats` sink: each line published to a NATS JetStream stream, stored there once.

Spooled like `http` (sinks/spooled.py): lines enter the spool in the transaction that
moves their checkpoints, and the sender thread publishes them and deletes them only
after the stream's PubAck. Every message carries `Nats-Msg-Id` = state database
identity, sink and the line's spool id, the same across retries and crashes, so a
re-publish inside the stream's duplicate window is dropped by the server. A batch older
than that window is first compared with the last message stored on each of its subjects
(ids only grow), so a long outage doubles nothing either.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sinks import spool
from sinks.base import SenderContext, SinkContext, SinkSpec
from sinks.config import int_in, seconds_in, shown_url, template_fields, text
from sinks.jetstream_facts import JetStreamError, Message, NatsAuth, StreamFacts, headers_size
from sinks.sender import Outcome, SpoolSender, short
from sinks.spooled import SpooledSink
from store.errors import ConfigError

if TYPE_CHECKING:
    from sinks.jetstream import JetStreamClient

log = logging.getLogger("inboxd.sinks")

FIELDS = ("host", "file", "sink")
_TOKEN_BAD = re.compile(r"[^A-Za-z0-9_\-]")
_LITERAL = re.compile(r"^[A-Za-z0-9_\-.{}]*$")
# A batch this close to the duplicate window's end is checked against the stream first.
WINDOW_MARGIN = 0.8
# How far back a subject shared with other producers is searched for this one's last.
SCAN_BACK_MAX = 1000
CHECK_TIMEOUT_S = 1.0
_AUTH_KEYS = ("user", "password", "token", "credentials", "nkey_seed", "tls_ca", "tls_cert",
              "tls_key")  # fmt: skip
_STREAM_KEYS = ("create", "max_age", "max_bytes", "max_msgs", "duplicate_window", "discard")


def token(value: str) -> str:
    """`value` as one subject token: what a token may not hold becomes `_`."""
    return _TOKEN_BAD.sub("_", value) or "_"


def render_subject(template: str, *, host: str, file: str | None, sink: str) -> str:
    """The subject of a line: `{file}`'s folders become tokens, its dots `_`."""
    path = ".".join(token(p) for p in (file or "_").split("/") if p) or "_"
    return (
        template.replace("{host}", token(host))
        .replace("{sink}", token(sink))
        .replace("{file}", path)
    )


def stream_filter(template: str) -> str:
    """Subjects a created stream takes: `{host}`/`{sink}` tokens `*`, from `{file}` on `>`."""
    out: list[str] = []
    for part in template.split("."):
        if "{file}" in part:
            out.append(">")
            break
        out.append("*" if "{" in part else part)
    return ".".join(out)


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: `*` one token, `>` one or more at the end."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


@dataclass(frozen=True, slots=True)
class NatsSpec(SinkSpec):
    KEYS: ClassVar[tuple[str, ...]] = (
        "type", "servers", "subject", "stream", *_STREAM_KEYS, *_AUTH_KEYS, "batch",
        "max_in_flight", "timeout", "max_pending",
    )  # fmt: skip
    SPOOLED: ClassVar[bool] = True

    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    subject: str = "inboxd.{host}.{file}"
    stream: str = "INBOXD"
    create: bool = False
    max_age: float = 0.0  # for create: seconds a message is kept (0: for ever)
    max_bytes: int = -1
    max_msgs: int = -1
    duplicate_window: float = 120.0
    discard: str = "old"
    auth: NatsAuth = field(default_factory=NatsAuth)
    batch: int = 1000
    max_in_flight: int = 256
    timeout: float = 5.0
    pending_limit: int = 100_000

    @classmethod
    def parse(cls, name: str, table: dict[str, Any], where: str) -> NatsSpec:
        stream = text(table.get("stream", "INBOXD"), f"{where} stream")
        assert stream is not None
        if re.search(r"[\s.*>/\\]", stream):
            raise ConfigError(f"{where} stream: {stream!r} cannot name a stream")
        batch = int_in(table.get("batch", 1000), f"{where} batch", 1, 100_000)
        max_pending = int_in(table.get("max_pending", 100_000), f"{where} max_pending", 1, 10**9)
        return cls(
            name, "nats", servers=_servers(table, where), subject=_subject(table, name, where),
            stream=stream, **_stream_options(table, where), auth=_auth(table, where),
            batch=batch, pending_limit=max(batch, max_pending),
            max_in_flight=int_in(table.get("max_in_flight", 256), f"{where} max_in_flight", 1,
                                 65_536),
            timeout=seconds_in(table.get("timeout", 5), f"{where} timeout", 0, 600),
        )  # fmt: skip

    @property
    def max_pending(self) -> int:
        return self.pending_limit

    def describe(self, outbox: str, state_dir: str) -> str:
        servers = ", ".join(shown_url(s) for s in self.servers)
        return (f"nats sink {servers} stream {self.stream} subject {self.subject}, "
                f"{self.batch} lines a batch (exactly-once into the stream)")  # fmt: skip

    def client(self, connect_timeout: float) -> JetStreamClient:
        from sinks.jetstream import JetStreamClient  # nats-py only where a nats sink runs

        return JetStreamClient(
            list(self.servers), auth=self.auth, ack_timeout=self.timeout,
            connect_timeout=connect_timeout, name=f"inboxd {self.name}",
        )  # fmt: skip

    def check(self, state_dir: Path, *, strict: bool) -> str | None:
        """The stream exists (or is created) and takes the sink's subjects: ConfigError
        otherwise. A server that cannot be reached now is only a warning."""
        client = self.client(CHECK_TIMEOUT_S)
        where = f"[sinks.{self.name}]"
        try:
            client.connect()
            facts = self.ensure_stream(client)
        except JetStreamError as exc:
            if exc.kind == "no_stream":
                raise ConfigError(
                    f"{where} stream: no stream {self.stream!r} on the server; create it, "
                    "or set create = true"
                ) from None
            return f"{where}: {exc} (lines wait in the spool until it answers)"
        finally:
            client.close()
        sample = render_subject(self.subject, host=socket.gethostname(), file="a.log",
                                sink=self.name)  # fmt: skip
        if not any(subject_matches(s, sample) for s in facts.subjects):
            raise ConfigError(
                f"{where} subject: stream {self.stream!r} takes {', '.join(facts.subjects)}, "
                f"not {sample!r}"
            )
        return None

    def ensure_stream(self, client: JetStreamClient) -> StreamFacts:
        if not self.create:
            return client.stream(self.stream)
        return client.create_stream(
            self.stream, [stream_filter(self.subject)], max_age_s=self.max_age,
            max_bytes=self.max_bytes, max_msgs=self.max_msgs,
            duplicate_window_s=self.duplicate_window, discard=self.discard,
        )  # fmt: skip

    def build(self, ctx: SinkContext) -> SpooledSink:
        return SpooledSink(self, ctx)

    def sender(self, ctx: SenderContext) -> SpoolSender:
        return SpoolSender(self.name, "nats", self.batch, NatsTransport(self), ctx.board,
                           ctx.db_path, keep_line=ctx.keep_line)  # fmt: skip


def _servers(table: dict[str, Any], where: str) -> tuple[str, ...]:
    servers = table.get("servers", ["nats://127.0.0.1:4222"])
    if isinstance(servers, str):
        servers = [servers]
    if (
        not isinstance(servers, list)
        or not servers
        or not all(
            isinstance(s, str) and re.match(r"^(nats|tls|ws|wss)://[^/\s]+/?$", s) for s in servers
        )
    ):
        raise ConfigError(
            f"{where} servers: expected a list of nats://host:port URLs, got {servers!r}"
        )
    return tuple(servers)


def _subject(table: dict[str, Any], name: str, where: str) -> str:
    subject = text(table.get("subject", "inboxd.{host}.{file}"), f"{where} subject")
    assert subject is not None
    template_fields(subject, FIELDS, f"{where} subject")
    sample = render_subject(subject, host="h", file="a/b.log", sink=name)
    if not _LITERAL.match(subject) or not subject_matches(">", sample) or ".." in sample:
        raise ConfigError(
            f"{where} subject: {subject!r} is not a subject to publish on (tokens of "
            "letters, digits, '_' or '-' between dots, no wildcards; "
            "placeholders {host}, {file}, {sink})"
        )
    return subject


def _stream_options(table: dict[str, Any], where: str) -> dict[str, Any]:
    """The keys that shape a stream made with `create = true`."""
    create = table.get("create", False)
    if not isinstance(create, bool):
        raise ConfigError(f"{where} create: expected true or false, got {create!r}")
    discard = table.get("discard", "old")
    if discard not in ("old", "new"):
        raise ConfigError(f'{where} discard: expected "old" or "new", got {discard!r}')
    max_age = table.get("max_age", 0)
    if max_age != 0:
        max_age = seconds_in(max_age, f"{where} max_age", 0, 10**10)
    return {
        "create": create,
        "discard": discard,
        "max_age": float(max_age),
        "max_bytes": int_in(table.get("max_bytes", -1), f"{where} max_bytes", -1, 2**62),
        "max_msgs": int_in(table.get("max_msgs", -1), f"{where} max_msgs", -1, 2**62),
        "duplicate_window": seconds_in(
            table.get("duplicate_window", 120), f"{where} duplicate_window", 0, 10**7
        ),
    }


def _auth(table: dict[str, Any], where: str) -> NatsAuth:
    auth = NatsAuth(**{k: text(table.get(k), f"{where} {k}", optional=True)
                       for k in _AUTH_KEYS})  # fmt: skip
    for key in ("credentials", "nkey_seed", "tls_ca", "tls_cert", "tls_key"):
        path = getattr(auth, key)
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"{where} {key}: no file {path}")
    return auth


class NatsTransport:
    """Publishes batches and waits for their PubAcks; the sender thread's only."""

    def __init__(self, spec: NatsSpec, *, host: str | None = None) -> None:
        self.spec = spec
        self.host = host or socket.gethostname()
        self._client: JetStreamClient | None = None
        self._facts: StreamFacts | None = None
        self._scan_warned = False

    def send(self, batch: spool.SpoolBatch, rows: list[spool.SpoolRow], instance: str) -> Outcome:
        try:
            client, facts = self._connected()
            prefix = f"{instance}:{self.spec.name}:"
            messages, dead = self._messages(rows, prefix, facts)
            if time.time() - batch.created >= facts.duplicate_window_s * WINDOW_MARGIN:
                messages = self._not_stored(client, messages, prefix)
        except JetStreamError as exc:
            self.close()
            return Outcome(False, short(str(exc)))
        results = client.publish(messages, stream=self.spec.stream,
                                 max_in_flight=self.spec.max_in_flight)  # fmt: skip
        failed = []
        for message, result in zip(messages, results, strict=True):
            if result.ok:
                continue
            if result.kind == "too_large":
                dead.append((_row_id(message.msg_id), result.error))
            else:
                failed.append(result)
        if failed:
            if not client.is_connected():
                self.close()
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            return Outcome(False, short(f"{failed[0].error}{more}"))
        return Outcome(True, dead=tuple(dead))

    def _connected(self) -> tuple[JetStreamClient, StreamFacts]:
        if self._client is None or not self._client.is_connected():
            self.close()
            client = self.spec.client(min(self.spec.timeout, 5.0))
            try:
                client.connect()
                self._facts = self.spec.ensure_stream(client)
            except BaseException:
                client.close()
                raise
            self._client = client
        assert self._facts is not None
        return self._client, self._facts

    def _messages(
        self, rows: list[spool.SpoolRow], prefix: str, facts: StreamFacts
    ) -> tuple[list[Message], list[tuple[int, str]]]:
        limit, what = facts.max_payload, "the server's max_payload"
        if 0 < facts.max_msg_size < limit:
            limit, what = facts.max_msg_size, f"stream {facts.name}'s max_msg_size"
        messages: list[Message] = []
        dead: list[tuple[int, str]] = []
        spec = self.spec
        # A batch holds few files: their subject and header are made once each.
        per_file: dict[object, tuple[str, str]] = {}
        # The header block's size but for the line number (Nats-Msg-Id counted too).
        base = headers_size({"Nats-Msg-Id": f"{prefix}0", "Nats-Expected-Stream": spec.stream,
                             "Inboxd-File": "", "Inboxd-Line": ""})  # fmt: skip
        for row_id, file, line_no, line in rows:
            known = per_file.get(file)
            if known is None:
                name = file if isinstance(file, str) else str(file)
                subject = render_subject(spec.subject, host=self.host, file=name, sink=spec.name)
                known = per_file[file] = (subject, _header(name))
            subject, shown = known
            payload = (line if isinstance(line, str) else str(line)).encode("utf-8", "replace")
            number = "" if line_no is None else str(line_no)
            size = len(payload) + base + len(shown.encode()) + len(number) + len(str(row_id))
            if size > limit:
                why = (f"MessageTooLarge: line of {len(payload)} bytes, {size} with its headers, "
                       f"over {what} of {limit} bytes (sink {spec.name})")  # fmt: skip
                dead.append((row_id, why))
                continue
            headers = {"Inboxd-File": shown, "Inboxd-Line": number}
            messages.append(Message(subject, payload, f"{prefix}{row_id}", headers))
        return messages, dead

    def _not_stored(
        self, client: JetStreamClient, messages: list[Message], prefix: str
    ) -> list[Message]:
        """The messages the stream does not hold yet, by the last id of this producer on
        each subject: past the duplicate window the server no longer knows the ids."""
        last: dict[str, int] = {}
        for subject in dict.fromkeys(m.subject for m in messages):
            last[subject] = self._last_id(client, subject, prefix)
        keep = [m for m in messages if _row_id(m.msg_id) > last[m.subject]]
        if len(keep) != len(messages):
            log.info("nats sink %s: %d lines of a batch past the duplicate window were "
                     "already in the stream", self.spec.name, len(messages) - len(keep),
                     extra={"event": "sink_deduplicated", "sink": self.spec.name})  # fmt: skip
        return keep

    def _last_id(self, client: JetStreamClient, subject: str, prefix: str) -> int:
        found = client.last_on_subject(self.spec.stream, subject)
        scanned = 0
        while found is not None:
            seq, headers = found
            msg_id = headers.get("Nats-Msg-Id", "")
            if msg_id.startswith(prefix):
                return _row_id(msg_id)
            # Another producer's message on a shared subject: look further back.
            scanned += 1
            if scanned > SCAN_BACK_MAX or seq <= 1:
                break
            found = None
            while found is None and seq > 1 and scanned <= SCAN_BACK_MAX:
                seq -= 1
                got = client.get(self.spec.stream, seq)
                if got is not None and got[0] == subject:
                    found = (seq, got[1])
                scanned += 1
        if scanned > SCAN_BACK_MAX and not self._scan_warned:
            self._scan_warned = True
            log.warning(
                "nats sink %s: subject %s is shared with other producers; past the duplicate "
                "window a batch may be published again", self.spec.name, subject,
                extra={"event": "sink_scan_limit", "sink": self.spec.name},
            )  # fmt: skip
        return 0

    def idle(self) -> None:
        """Let the client answer the server's pings, so a quiet sink keeps its connection."""
        if self._client is not None:
            self._client.service()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._facts = None


def _row_id(msg_id: str) -> int:
    try:
        return int(msg_id.rpartition(":")[2])
    except ValueError:
        return 0


def _header(value: str) -> str:
    """A header value on one line (a file name may hold anything)."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in value)
