"""Helpers of the nats sink's end-to-end tests: the config, input files, and reading the
stream back with nats-py (each call is one short asyncio.run, so no thread is left)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import nats
from nats.js import api

T = TypeVar("T")

SINK = "bus"
STREAM = "INBOXD"
PIPE = 'def both(line):\n    yield "end", line\n    yield "bus", line\n'
HOST_TOKEN = re.sub(r"[^A-Za-z0-9_\-]", "_", socket.gethostname()) or "_"
FETCH = 1000


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(value)


def nats_config(folder: Path, servers: str | list[str], **sink: object) -> Path:
    """A config whose start processor sends every line to the outbox and to sink `bus`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "natspipe.py").write_text(PIPE)
    table = {"type": "nats", "servers": [servers] if isinstance(servers, str) else servers,
             "subject": "inboxd.{host}.{file}", "stream": STREAM, "create": True,
             "duplicate_window": 120, "batch": 500, "timeout": 2, **sink}  # fmt: skip
    body = "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items())
    path = folder / "inboxd.toml"
    path.write_text(f'[pipeline]\nstart = "natspipe:both"\n\n[sinks.{SINK}]\n{body}')
    return path


def write_lines(path: Path, first: int, last: int, width: int = 40) -> list[str]:
    """Append lines `first`..`last`-1 of about `width` bytes to `path`; returns them."""
    lines = [f"{path.name} {i:06d} ".ljust(width, "x") for i in range(first, last)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write("".join(x + "\n" for x in lines))
    return lines


class Stored(NamedTuple):
    seq: int
    subject: str
    line: str
    headers: dict[str, str]


def _run(url: str, work: Callable[[Any], Awaitable[T]], auth: dict[str, str] | None = None) -> T:
    async def main() -> T:
        async def quiet(_error: Exception) -> None:
            return None

        nc = await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=1,
                                connect_timeout=2, error_cb=quiet, **(auth or {}))  # fmt: skip
        try:
            return await work(nc)
        finally:
            await nc.close()

    return asyncio.run(main())


def stream_state(url: str, stream: str = STREAM, **auth: str) -> api.StreamState | None:
    """The stream's state (messages, last_seq...), None when there is no such stream."""

    async def work(nc: Any) -> api.StreamState | None:
        try:
            state: api.StreamState = (await nc.jetstream().stream_info(stream)).state
            return state
        except nats.js.errors.NotFoundError:
            return None

    return _run(url, work, auth)


def stream_count(url: str, stream: str = STREAM, **auth: str) -> int:
    state = stream_state(url, stream, **auth)
    return 0 if state is None else state.messages


def stream_messages(url: str, stream: str = STREAM, **auth: str) -> list[Stored]:
    """Every message the stream holds, in sequence order, with its headers, read by an
    ephemeral pull consumer that acks nothing."""

    async def work(nc: Any) -> list[Stored]:
        js = nc.jetstream()
        total = (await js.stream_info(stream)).state.messages
        config = api.ConsumerConfig(ack_policy=api.AckPolicy.NONE, inactive_threshold=5.0,
                                    deliver_policy=api.DeliverPolicy.ALL)  # fmt: skip
        sub = await js.pull_subscribe("", stream=stream, config=config)
        got: list[Stored] = []
        try:
            while len(got) < total:
                for msg in await sub.fetch(min(FETCH, total - len(got)), timeout=5):
                    headers = {str(k): str(v) for k, v in (msg.headers or {}).items()}
                    got.append(Stored(msg.metadata.sequence.stream, msg.subject,
                                      msg.data.decode("utf-8"), headers))  # fmt: skip
        finally:
            await sub.unsubscribe()
        return got

    return _run(url, work, auth)


def update_stream(url: str, stream: str = STREAM, **changes: Any) -> None:
    """Change the stream's config (max_msgs=-1 lifts a limit)."""

    async def work(nc: Any) -> None:
        js = nc.jetstream()
        config = (await js.stream_info(stream)).config
        for key, value in changes.items():
            setattr(config, key, value)
        await js.update_stream(config)

    _run(url, work)


def assert_once(stored: list[Stored], want: list[str]) -> None:
    """The stream holds every wanted line once: by payload and by (file, line number)."""
    got = Counter(m.line for m in stored)
    missing = Counter(want) - got
    extra = got - Counter(want)
    assert not missing and not extra, (
        f"stream: {len(stored)} messages for {len(want)} lines; missing "
        f"{sorted(missing)[:5]} ({sum(missing.values())}), extra or doubled "
        f"{sorted(extra)[:5]} ({sum(extra.values())})"
    )
    places = Counter((m.headers.get("Inboxd-File"), m.headers.get("Inboxd-Line")) for m in stored)
    doubled = [p for p, n in places.items() if n > 1]
    assert not doubled, f"(Inboxd-File, Inboxd-Line) stored twice: {doubled[:5]}"
    ids = Counter(m.headers.get("Nats-Msg-Id") for m in stored)
    assert all(n == 1 for n in ids.values()), "a Nats-Msg-Id stored twice"
