"""A synchronous JetStream publisher over nats-py, for one plain (non-asyncio) thread.

The client owns a private event loop and runs it only inside its own calls, so the
caller's thread never needs asyncio. Not thread-safe: one thread makes every call,
and that thread must not be running an event loop of its own. The loop runs only
during calls, so a caller idle for minutes should call `service()` now and then to
answer the server's PINGs (the server drops a client that misses two, 2 minutes apart
by default); a dropped connection shows as `is_connected()` False and the caller
connects again with its own back-off: the client never reconnects by itself.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import api
from nats.js.errors import APIError, ServiceUnavailableError

from sinks.jetstream_facts import (
    DISCONNECTED,
    ERR_NO_MESSAGE,
    ERR_STREAM_NAME_IN_USE,
    ERR_STREAM_NOT_FOUND,
    JetStreamError,
    Message,
    NatsAuth,
    Published,
    StreamFacts,
    enum_text,
    one_line,
)
from sinks.jetstream_window import AckWindow

__all__ = [
    "JetStreamClient",
    "JetStreamError",
    "Message",
    "NatsAuth",
    "Published",
    "StreamFacts",
]

T = TypeVar("T")
CLOSE_S = 5.0
PING_INTERVAL_S = 20


class JetStreamClient:
    """One nats connection and its JetStream calls, made synchronous for one thread."""

    def __init__(
        self,
        servers: list[str],
        *,
        auth: NatsAuth = NatsAuth(),  # noqa: B008 - frozen, so one shared default is safe
        connect_timeout: float = 2.0,
        ack_timeout: float = 5.0,
        name: str = "inboxd",
    ) -> None:
        self.servers = list(servers)
        self.auth = auth
        self.connect_timeout = connect_timeout
        self.ack_timeout = ack_timeout
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nc: NATS | None = None
        self._window: AckWindow | None = None
        self._last_error = ""

    # -- connection ---------------------------------------------------------------

    def connect(self) -> None:
        """Connect (a no-op when connected); one try per server, no reconnect loop."""
        if self.is_connected():
            return
        self._drop_connection()
        nc = NATS()
        window = AckWindow(nc, "", self.ack_timeout)
        window.last_error = lambda: self._last_error
        options = self._connect_options(window)
        loop = self._loop_for_use()
        self._last_error = ""
        # nats-py tries each server twice (its floor, with no wait between) and gives up.
        budget = (self.connect_timeout + 0.5) * 2 * max(len(self.servers), 1) + 1.0
        try:
            loop.run_until_complete(asyncio.wait_for(nc.connect(**options), budget))
            window.reply_prefix = nc.new_inbox() + "."
            loop.run_until_complete(nc.subscribe(window.reply_prefix + ">", cb=window.on_ack))
        except Exception as exc:
            self._close_nc(nc)
            raise self._connect_error(exc) from None
        self._nc = nc
        self._window = window

    def _connect_options(self, window: AckWindow) -> dict[str, Any]:
        auth = self.auth

        async def dropped() -> None:
            said = f": {self._last_error}" if self._last_error else ""
            window.connection_lost(f"nats: connection lost{said}")

        options: dict[str, Any] = {
            "servers": self.servers,
            "name": self.name,
            "allow_reconnect": False,
            "max_reconnect_attempts": 1,
            "reconnect_time_wait": 0,
            "connect_timeout": self.connect_timeout,
            "ping_interval": PING_INTERVAL_S,
            "error_cb": self._on_error,
            "disconnected_cb": dropped,
            "closed_cb": dropped,
        }
        if auth.user is not None:
            options["user"] = auth.user
            options["password"] = auth.password or ""
        if auth.token is not None:
            options["token"] = auth.token
        for path, key in ((auth.credentials, "user_credentials"), (auth.nkey_seed, "nkeys_seed")):
            if path is None:
                continue
            if not os.access(path, os.R_OK):
                raise JetStreamError("auth", f"nats: cannot read {key} file {path}")
            try:
                import nkeys  # noqa: F401 - nats-py needs it to sign with these files
            except ImportError:
                raise JetStreamError(
                    "auth", f"nats: {key} need the nkeys package: pip install nkeys"
                ) from None
            options[key] = path
        if auth.tls_ca or auth.tls_cert:
            try:
                context = ssl.create_default_context(cafile=auth.tls_ca)
                if auth.tls_cert:
                    context.load_cert_chain(auth.tls_cert, auth.tls_key)
            except (OSError, ssl.SSLError) as exc:
                raise JetStreamError("auth", f"nats: TLS files: {exc}") from None
            options["tls"] = context
        return options

    def _connect_error(self, exc: BaseException) -> JetStreamError:
        said = f"{exc} {self._last_error}".lower()
        if "authorization" in said or "authentication" in said:
            return JetStreamError("auth", f"nats: authorization violation ({self._where()})")
        reason = self._last_error or str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError) and not self._last_error:
            reason = f"no answer within {self.connect_timeout:g} s"
        return JetStreamError("connect", f"nats: cannot connect to {self._where()}: {reason}")

    def _where(self) -> str:
        """The servers, without any user:password they carry."""
        shown = []
        for server in self.servers:
            parts = urlsplit(server if "://" in server else f"nats://{server}")
            shown.append(f"{parts.scheme}://{parts.hostname}:{parts.port or 4222}")
        return ", ".join(shown) or "(no servers)"

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = one_line(str(exc) or type(exc).__name__)

    def is_connected(self) -> bool:
        """True while the connection is up, as far as the socket has told so far."""
        if self._nc is None:
            return False
        self.service()
        window = self._window
        return self._nc is not None and self._nc.is_connected and not (window and window.lost)

    def service(self, seconds: float = 0.0) -> None:
        """Run the loop for `seconds` (at least a few turns): answers PINGs, notes drops."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.run_until_complete(self._turns(seconds))

    @staticmethod
    async def _turns(seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)
        for _ in range(4):
            await asyncio.sleep(0)

    @property
    def max_payload(self) -> int:
        """The server's max_payload (bytes, headers included), 0 when not connected."""
        return self._nc.max_payload if self._nc is not None else 0

    # -- streams and messages -----------------------------------------------------

    def stream(self, name: str) -> StreamFacts:
        """The facts of stream `name`; JetStreamError(kind="no_stream") when it is missing."""
        info = self._api(self._js().stream_info(name), f"stream {name}")
        return self._facts(info)

    def create_stream(
        self,
        name: str,
        subjects: list[str],
        *,
        max_age_s: float = 0,
        max_bytes: int = -1,
        max_msgs: int = -1,
        duplicate_window_s: float = 120,
        discard: str = "old",
        storage: str = "file",
    ) -> StreamFacts:
        """Create the stream, or return the facts of the existing one (left as it is)."""
        config = api.StreamConfig(
            name=name,
            subjects=list(subjects),
            max_age=max_age_s,
            max_bytes=max_bytes,
            max_msgs=max_msgs,
            duplicate_window=duplicate_window_s,
            discard=api.DiscardPolicy(discard),
            storage=api.StorageType(storage),
        )
        try:
            info = self._api(self._js().add_stream(config), f"stream {name}")
        except JetStreamError as exc:
            if getattr(exc.__cause__, "err_code", None) != ERR_STREAM_NAME_IN_USE:
                raise
            return self.stream(name)
        return self._facts(info)

    def _facts(self, info: api.StreamInfo) -> StreamFacts:
        config = info.config
        state = info.state
        return StreamFacts(
            name=config.name or "",
            subjects=tuple(config.subjects or ()),
            duplicate_window_s=float(config.duplicate_window or 0),
            max_msg_size=config.max_msg_size if config.max_msg_size not in (None, 0) else -1,
            discard=enum_text(config.discard or "old"),
            max_payload=self.max_payload,
            messages=state.messages,
            last_seq=state.last_seq,
        )

    def last_on_subject(self, stream: str, subject: str) -> tuple[int, dict[str, str]] | None:
        """Sequence and headers of the last message on `subject`, None when there is none."""
        found = self._stored(self._js().get_last_msg(stream, subject), stream)
        if found is None:
            return None
        return found.seq or 0, _plain_headers(found.headers)

    def get(self, stream: str, seq: int) -> tuple[str, dict[str, str]] | None:
        """Subject and headers of message `seq`, None when deleted or never stored."""
        if seq < 1:
            return None
        found = self._stored(self._js().get_msg(stream, seq), stream)
        if found is None:
            return None
        return found.subject or "", _plain_headers(found.headers)

    def _stored(
        self, call: Coroutine[Any, Any, api.RawStreamMsg], stream: str
    ) -> api.RawStreamMsg | None:
        try:
            return self._api(call, f"stream {stream}")
        except JetStreamError as exc:
            if getattr(exc.__cause__, "err_code", None) == ERR_NO_MESSAGE:
                return None
            raise

    def _js(self) -> Any:
        if self._nc is None or self._loop is None:
            raise JetStreamError("connect", f"nats: not connected to {self._where()}")
        return self._nc.jetstream(timeout=self.ack_timeout)

    def _api(self, call: Coroutine[Any, Any, T], what: str) -> T:
        """Run one JetStream API call, its failures as JetStreamError (cause kept)."""
        assert self._loop is not None
        try:
            return self._loop.run_until_complete(call)
        except ServiceUnavailableError as exc:
            raise JetStreamError("other", f"nats: JetStream unavailable: {exc}") from exc
        except APIError as exc:
            if exc.err_code == ERR_STREAM_NOT_FOUND:
                raise JetStreamError("no_stream", f"nats: {what} not found") from exc
            raise JetStreamError("other", f"nats: {what}: {exc.description}") from exc
        except (NatsTimeoutError, TimeoutError) as exc:
            raise JetStreamError(
                "timeout", f"nats: {what}: no answer within {self.ack_timeout:g} s"
            ) from exc
        except Exception as exc:
            if self._nc is None or not self._nc.is_connected:
                raise JetStreamError("connect", f"nats: {what}: connection lost") from exc
            raise JetStreamError("other", f"nats: {what}: {one_line(str(exc))}") from exc

    # -- publishing ---------------------------------------------------------------

    def publish(
        self, messages: list[Message], *, stream: str, max_in_flight: int = 256
    ) -> list[Published]:
        """Publish every message and wait for its PubAck: one Published each, same order.

        Never raises for what the server or the network does: a message whose ack did not
        come gets kind "timeout" (none for ack_timeout s) or "disconnected", and one not
        sent at all says so in `error`.
        """
        if not messages:
            return []
        window = self._window
        if window is None or self._loop is None or not self.is_connected():
            why = (window.lost if window else "") or "nats: not connected"
            return [Published(False, error=why, kind=DISCONNECTED)] * len(messages)
        return self._loop.run_until_complete(
            window.publish(messages, stream, max(1, max_in_flight))
        )

    # -- closing ------------------------------------------------------------------

    def _loop_for_use(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop

    def _close_nc(self, nc: NATS) -> None:
        if self._loop is None or nc.is_closed:
            return
        try:
            self._loop.run_until_complete(asyncio.wait_for(nc.close(), CLOSE_S))
        except Exception as exc:
            self._last_error = one_line(str(exc))

    def _drop_connection(self) -> None:
        if self._nc is not None:
            self._close_nc(self._nc)
            self._nc = None
            self._window = None

    def close(self) -> None:
        """Close the connection and the loop; idempotent, and connect() may follow."""
        loop = self._loop
        if loop is None:
            return
        try:
            self._drop_connection()
            tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
            self._loop = None


def _plain_headers(headers: dict[Any, Any] | None) -> dict[str, str]:
    """Headers as str to str (nats-py may key some by its Header enum)."""
    return {enum_text(key): str(value) for key, value in (headers or {}).items()}
