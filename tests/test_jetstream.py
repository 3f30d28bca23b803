"""The JetStream client (sinks/jetstream.py) against a real nats-server with JetStream."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nats_fixtures import MakeNatsServer, NatsServer, nats_server_factory

from sinks.jetstream import JetStreamClient, JetStreamError, Message, NatsAuth

STREAM = "LINES"


@pytest.fixture
def make_nats(tmp_path: Path) -> Iterator[MakeNatsServer]:
    yield from nats_server_factory(tmp_path)


@pytest.fixture
def clients() -> Iterator[list[JetStreamClient]]:
    made: list[JetStreamClient] = []
    yield made
    for client in made:
        client.close()


def connected(
    clients: list[JetStreamClient], server: NatsServer, **options: Any
) -> JetStreamClient:
    client = JetStreamClient([server.url], **options)
    clients.append(client)
    client.connect()
    return client


def lines(count: int, *, prefix: str = "id", subject: str = "lines.a") -> list[Message]:
    return [
        Message(subject, b"x" * 90 + f"{i:010d}".encode(), f"{prefix}{i}", {"Inboxd-N": str(i)})
        for i in range(count)
    ]


def test_connect_and_stream_facts(
    make_nats: MakeNatsServer, clients: list[JetStreamClient]
) -> None:
    server = make_nats(max_payload=4096)
    client = connected(clients, server)
    assert client.is_connected()
    made = client.create_stream(STREAM, ["lines.>"], duplicate_window_s=30, discard="new")
    assert made.name == STREAM and made.subjects == ("lines.>",)
    assert made.duplicate_window_s == 30 and made.discard == "new"
    assert made.max_msg_size == -1 and made.max_payload == 4096 and made.messages == 0
    assert client.stream(STREAM) == made
    # An existing stream is left as it is, whatever the second call asks for.
    assert client.create_stream(STREAM, ["other.>"], discard="old") == made


def test_publish_stores_all_then_duplicates_store_nothing(
    make_nats: MakeNatsServer, clients: list[JetStreamClient]
) -> None:
    client = connected(clients, make_nats())
    client.create_stream(STREAM, ["lines.>"])
    batch = lines(10_000)
    first = client.publish(batch, stream=STREAM)
    assert [p.ok and not p.duplicate for p in first] == [True] * 10_000
    assert sorted(p.seq or 0 for p in first) == list(range(1, 10_001))
    assert client.stream(STREAM).messages == 10_000
    again = client.publish(batch, stream=STREAM)
    assert all(p.ok and p.duplicate for p in again)
    assert [p.seq for p in again] == [p.seq for p in first]
    assert client.stream(STREAM).messages == 10_000


def test_too_large_is_not_sent_and_the_rest_is_stored(
    make_nats: MakeNatsServer, clients: list[JetStreamClient]
) -> None:
    client = connected(clients, make_nats(max_payload=1024))
    client.create_stream(STREAM, ["lines.>"])
    batch = [
        Message("lines.a", b"small", "a", {}),
        Message("lines.a", b"x" * 1024, "big", {}),  # fits alone, not with its headers
        Message("lines.a", b"small too", "b", {}),
    ]
    out = client.publish(batch, stream=STREAM)
    assert [p.ok for p in out] == [True, False, True]
    assert out[1].kind == "too_large" and "max_payload 1024" in out[1].error
    assert client.is_connected()  # the server never saw it, so never closed the connection
    assert client.stream(STREAM).messages == 2


def test_stream_full_with_discard_new(
    make_nats: MakeNatsServer, clients: list[JetStreamClient]
) -> None:
    client = connected(clients, make_nats())
    client.create_stream(STREAM, ["lines.>"], max_msgs=5, discard="new")
    out = client.publish(lines(8), stream=STREAM)
    assert [p.ok for p in out] == [True] * 5 + [False] * 3
    assert {p.kind for p in out[5:]} == {"stream_full"}
    assert "maximum messages exceeded" in out[5].error
    assert client.stream(STREAM).messages == 5


def test_wrong_password_is_an_auth_error_at_once(
    make_nats: MakeNatsServer, clients: list[JetStreamClient]
) -> None:
    server = make_nats(users=[("inboxd", "right")])
    wrong = JetStreamClient([server.url], auth=NatsAuth(user="inboxd", password="wrong"))
    clients.append(wrong)
    started = time.monotonic()
    with pytest.raises(JetStreamError) as caught:
        wrong.connect()
    assert time.monotonic() - started < 3
    assert caught.value.kind == "auth"
    assert "authorization violation" in str(caught.value) and "\n" not in str(caught.value)
    right = connected(clients, server, auth=NatsAuth(user="inboxd", password="right"))
    assert right.create_stream(STREAM, ["lines.>"]).name == STREAM


def test_server_down_is_a_connect_error_naming_it(
    make_nats: MakeNatsServer, clients: list[JetStreamClient]
) -> None:
    server = make_nats()
    server.stop()
    client = JetStreamClient([server.url], connect_timeout=1)
    clients.append(client)
    started = time.monotonic()
    with pytest.raises(JetStreamError) as caught:
        client.connect()
    assert time.monotonic() - started < 3
    assert caught.value.kind == "connect"
    assert server.url in str(caught.value) and "\n" not in str(caught.value)
    assert not client.is_connected()


class KillAfter(list[Message]):
    """A batch that kills the server once the client has taken `after` of its messages."""

    def __init__(self, messages: list[Message], server: NatsServer, after: int) -> None:
        super().__init__(messages)
        self.server = server
        self.after = after
        # How long the server took to die: a server busy in fsync on a loaded disk takes
        # its time, which is not the client's.
        self.kill_s = 0.0

    def __iter__(self) -> Iterator[Message]:
        for index, message in enumerate(super().__iter__()):
            if index == self.after:
                started = time.monotonic()
                self.server.kill()
                self.kill_s = time.monotonic() - started
            yield message


def test_kill_mid_publish_returns_then_restart_deduplicates(
    make_nats: MakeNatsServer, clients: list[JetStreamClient]
) -> None:
    server = make_nats()
    client = connected(clients, server, ack_timeout=5)
    client.create_stream(STREAM, ["lines.>"])
    batch = lines(30_000)
    started = time.monotonic()
    killing = KillAfter(batch, server, 10_000)
    first = client.publish(killing, stream=STREAM)
    took = time.monotonic() - started - killing.kill_s
    assert took < 4, f"{took:.1f} s: the drop must end the wait, not the ack timeout"
    stored = [i for i, p in enumerate(first) if p.ok]
    failed = [p for p in first if not p.ok]
    assert 0 < len(stored) <= 10_000 and failed
    assert {p.kind for p in failed} == {"disconnected"}
    assert all("connection" in p.error for p in failed)
    assert not client.is_connected()
    assert client.publish(lines(1), stream=STREAM)[0].kind == "disconnected"

    server.start()
    client.connect()
    again = client.publish(batch, stream=STREAM)
    assert all(p.ok for p in again)
    assert all(again[i].duplicate and again[i].seq == first[i].seq for i in stored)
    assert client.stream(STREAM).messages == 30_000


def test_kill_while_waiting_for_acks_ends_the_wait(
    make_nats: MakeNatsServer, clients: list[JetStreamClient]
) -> None:
    server = make_nats()
    client = connected(clients, server, ack_timeout=5)
    client.create_stream(STREAM, ["lines.>"])
    started = time.monotonic()
    # Killed as the last message is taken: the client then waits for acks that never come.
    out = client.publish(KillAfter(lines(10), server, 9), stream=STREAM)
    assert time.monotonic() - started < 3
    assert {p.kind for p in out} == {"disconnected"}


def test_a_drop_the_client_library_does_not_report_still_ends_the_wait(
    make_nats: MakeNatsServer, clients: list[JetStreamClient]
) -> None:
    """nats-py can close a connection without calling its disconnected and closed
    callbacks (the read loop and the flusher both finding the socket gone); the wait for
    acks looks at the connection itself. The callbacks are taken away here to make that
    happen every time."""
    server = make_nats()
    client = connected(clients, server, ack_timeout=5)
    client.create_stream(STREAM, ["lines.>"])
    nc = client._nc
    assert nc is not None
    nc._disconnected_cb = nc._closed_cb = None
    started = time.monotonic()
    out = client.publish(KillAfter(lines(10), server, 9), stream=STREAM)
    assert time.monotonic() - started < 3
    assert {p.kind for p in out} == {"disconnected"}
    assert all("connection lost" in p.error for p in out)


def test_last_on_subject_and_get(make_nats: MakeNatsServer, clients: list[JetStreamClient]) -> None:
    client = connected(clients, make_nats())
    client.create_stream(STREAM, ["lines.>"])
    client.publish(
        lines(3, subject="lines.a") + lines(2, prefix="b", subject="lines.b"), stream=STREAM
    )
    seq, headers = client.last_on_subject(STREAM, "lines.a") or (0, {})
    assert seq == 3
    assert headers["Nats-Msg-Id"] == "id2" and headers["Inboxd-N"] == "2"
    assert client.last_on_subject(STREAM, "lines.none") is None
    assert client.get(STREAM, 4) == (
        "lines.b",
        {"Inboxd-N": "0", "Nats-Msg-Id": "b0", "Nats-Expected-Stream": STREAM},
    )
    assert client.get(STREAM, 99) is None


def test_no_stream(make_nats: MakeNatsServer, clients: list[JetStreamClient]) -> None:
    client = connected(clients, make_nats(), ack_timeout=5)
    with pytest.raises(JetStreamError) as caught:
        client.stream("NOPE")
    assert caught.value.kind == "no_stream"
    with pytest.raises(JetStreamError) as caught:
        client.last_on_subject("NOPE", "lines.a")
    assert caught.value.kind == "no_stream"
    client.create_stream(STREAM, ["lines.>"])
    started = time.monotonic()
    out = client.publish(
        [Message("elsewhere.a", b"x", "1", {}), Message("lines.a", b"x", "2", {})], stream=STREAM
    )
    assert out[0].kind == "no_stream" and out[1].ok
    wrong = client.publish(lines(2), stream="OTHER")  # stored by LINES, not by OTHER
    assert [p.kind for p in wrong] == ["no_stream", "no_stream"]
    assert time.monotonic() - started < 2  # answered at once, not timed out


def test_no_ack_times_out_without_spinning(
    make_nats: MakeNatsServer, clients: list[JetStreamClient]
) -> None:
    server = make_nats()
    # A subscriber that never answers: the server has interest, so nobody says no responders.
    with socket.create_connection(("127.0.0.1", server.port)) as silent:
        silent.settimeout(5)
        silent.sendall(b"CONNECT {}\r\nSUB lines.> 1\r\nPING\r\n")
        said = b""
        while b"PONG" not in said:
            said += silent.recv(4096) or pytest.fail(f"server hung up: {said!r}")
        client = connected(clients, server, ack_timeout=0.5)
        started, cpu = time.monotonic(), time.process_time()
        out = client.publish(lines(600), stream=STREAM, max_in_flight=256)
        waited, spent = time.monotonic() - started, time.process_time() - cpu
    assert {p.kind for p in out} == {"timeout"}
    assert "no PubAck within 0.5 s" in out[0].error and "not sent" in out[-1].error
    assert 0.5 <= waited < 2 and spent < 0.3


def test_close_is_idempotent_and_connect_works_again(
    make_nats: MakeNatsServer, clients: list[JetStreamClient]
) -> None:
    server = make_nats()
    # A name, not an address: the loop resolves it on its default executor's threads.
    client = JetStreamClient([f"nats://localhost:{server.port}"])
    clients.append(client)
    client.connect()
    client.create_stream(STREAM, ["lines.>"])
    client.close()
    client.close()
    assert not client.is_connected()
    client.connect()
    assert client.publish(lines(1), stream=STREAM)[0].ok
