"""The publishing half of the JetStream client: sends a batch, matches PubAcks to it.

Each message carries its own reply subject (inbox prefix, batch tag, index), so one
wildcard subscription routes every ack straight to its slot with no future per
message, and acks of an earlier batch that gave up on them are told apart and dropped.
Everything here runs on the client's private event loop only, so it needs no lock.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import BadHeaderError, BadSubjectError, MaxPayloadError

from sinks.jetstream_facts import (
    DISCONNECTED,
    OTHER,
    TIMEOUT,
    TOO_LARGE,
    Message,
    Published,
    ack_outcome,
    headers_size,
    no_stream_for,
    one_line,
    too_large,
)

# How often a wait for acks looks at the connection itself: nats-py can close it without
# calling its disconnected and closed callbacks (when the read loop and the flusher both
# find the socket gone), and the wait must not then run on to the ack timeout.
LOST_CHECK_S = 0.2


class _Batch:
    """The acks one publish() call still waits for."""

    __slots__ = ("last_ack", "outstanding", "results", "tag", "waiter", "wake_at")

    def __init__(self, tag: str, size: int, now: float) -> None:
        self.tag = tag
        self.results: list[Published | None] = [None] * size
        self.outstanding = 0
        self.last_ack = now
        self.waiter: asyncio.Future[None] | None = None
        self.wake_at = 0


class AckWindow:
    """Publishes batches on one connection with at most `limit` PubAcks outstanding."""

    def __init__(self, nc: NATS, reply_prefix: str, ack_timeout: float) -> None:
        self.nc = nc
        self.reply_prefix = reply_prefix  # "<inbox>." subscribed as "<inbox>.>"
        self.ack_timeout = ack_timeout
        self.lost = ""  # why the connection went, once it has
        # The client's last error, to say why when the connection went without a callback.
        self.last_error: Callable[[], str] = lambda: ""
        self._batch: _Batch | None = None
        self._tags = itertools.count(1)

    def connection_lost(self, reason: str) -> None:
        """Note the drop and end a wait for acks at once (they cannot come any more)."""
        self.lost = self.lost or one_line(reason)
        batch = self._batch
        if batch is not None and batch.waiter is not None and not batch.waiter.done():
            batch.waiter.set_result(None)

    async def publish(self, messages: list[Message], stream: str, limit: int) -> list[Published]:
        """One Published per message, in order; failures of the connection included."""
        nc = self.nc
        loop = asyncio.get_running_loop()
        batch = _Batch(str(next(self._tags)), len(messages), loop.time())
        results = batch.results
        prefix = f"{self.reply_prefix}{batch.tag}."
        max_payload = nc.max_payload
        self._batch = batch
        stopped = ""
        sent_to = 0
        try:
            for index, message in enumerate(messages):
                if batch.outstanding >= limit:
                    stopped = await self._wait(batch, limit - 1)
                    if stopped:
                        break
                headers = {**message.headers, "Nats-Msg-Id": message.msg_id}
                headers["Nats-Expected-Stream"] = stream
                size = headers_size(headers) + len(message.payload)
                if size > max_payload:  # the server would close the connection over it
                    results[index] = too_large(size, max_payload)
                    continue
                if batch.outstanding == 0:
                    batch.last_ack = loop.time()
                batch.outstanding += 1  # before the send: its ack may come while it flushes
                sent_to = index + 1
                try:
                    await nc.publish(message.subject, message.payload, f"{prefix}{index}", headers)
                except (MaxPayloadError, BadSubjectError, BadHeaderError) as exc:
                    batch.outstanding -= 1
                    if results[index] is None:
                        kind = TOO_LARGE if isinstance(exc, MaxPayloadError) else OTHER
                        results[index] = Published(False, error=f"nats: {exc}", kind=kind)
                except Exception as exc:
                    batch.outstanding -= 1
                    sent_to = index
                    stopped = DISCONNECTED
                    self.lost = self.lost or one_line(f"nats: publish failed: {exc}")
                    break
            if not stopped and batch.outstanding:
                stopped = await self._wait(batch, 0)
        finally:
            self._batch = None
        if stopped:
            self._fill_failures(results, sent_to, stopped)
        return [r if r is not None else Published(False, kind=OTHER) for r in results]

    async def _wait(self, batch: _Batch, target: int) -> str:
        """Wait until at most `target` acks are outstanding: "" then, else why not.

        The deadline is ack_timeout after the latest ack, so a long batch that keeps
        moving never times out, and one that stops does after ack_timeout.
        """
        loop = asyncio.get_running_loop()
        while batch.outstanding > target:
            if not self.lost and not self.nc.is_connected:
                said = self.last_error()
                self.lost = one_line(f"nats: connection lost{': ' + said if said else ''}")
            if self.lost:
                return DISCONNECTED
            remaining = batch.last_ack + self.ack_timeout - loop.time()
            if remaining <= 0:
                return TIMEOUT
            batch.waiter = loop.create_future()
            batch.wake_at = target
            try:
                await asyncio.wait_for(batch.waiter, min(remaining, LOST_CHECK_S))
            except TimeoutError:
                pass
            finally:
                batch.waiter = None
        return ""

    def _fill_failures(self, results: list[Published | None], sent_to: int, why: str) -> None:
        if why == TIMEOUT:
            late = f"nats: no PubAck within {self.ack_timeout:g} s"
            unsent = f"nats: not sent: an earlier message got {late[6:]}"
        else:
            late = f"{self.lost or 'nats: connection lost'} (before the PubAck)"
            unsent = f"{self.lost or 'nats: connection lost'} (not sent)"
        for index, result in enumerate(results):
            if result is None:
                error = late if index < sent_to else unsent
                results[index] = Published(False, error=error, kind=why)

    async def on_ack(self, msg: Msg) -> None:
        """The subscription's callback: file the PubAck (or no-responders) in its slot."""
        batch = self._batch
        if batch is None:
            return
        tag, _, number = msg.subject[len(self.reply_prefix) :].partition(".")
        if tag != batch.tag:
            return  # a late ack of an earlier call that gave up on it
        index = int(number)
        if batch.results[index] is not None:
            return
        if not msg.data and msg.headers and msg.headers.get("Status") == "503":
            batch.results[index] = no_stream_for(msg.headers.get("Nats-Subject", ""))
        else:
            batch.results[index] = ack_outcome(msg.data, orjson.loads)
        batch.outstanding -= 1
        batch.last_ack = asyncio.get_running_loop().time()
        waiter = batch.waiter
        if waiter is not None and batch.outstanding <= batch.wake_at and not waiter.done():
            waiter.set_result(None)
