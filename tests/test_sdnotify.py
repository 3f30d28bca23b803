"""sd_notify over a real AF_UNIX datagram socket, as systemd listens for it."""

from __future__ import annotations

import os
import select
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher.sdnotify import Notifier, socket_address, watchdog_usec

RECV_TIMEOUT_S = 5.0
# Path-bound AF_UNIX addresses are limited to 108 bytes.
SUN_PATH_MAX = 100


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound to a file path, as NOTIFY_SOCKET names it."""
    with tempfile.TemporaryDirectory(dir="/tmp") as short:
        folder = tmp_path if len(str(tmp_path)) < SUN_PATH_MAX - 12 else Path(short)
        path = str(folder / "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(RECV_TIMEOUT_S)
        try:
            yield sock, path
        finally:
            sock.close()


def receive(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def nothing_waiting(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable


def test_ready_status_stopping_arrive_as_datagrams(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    try:
        assert notifier.enabled
        assert notifier.watchdog_interval_s == 0.0
        notifier.ready()
        notifier.status("300 lines/s\n2 files")
        notifier.stopping()
        assert receive(sock) == "READY=1"
        assert receive(sock) == "STATUS=300 lines/s 2 files"
        assert receive(sock) == "STOPPING=1"
        notifier.watchdog()
        assert nothing_waiting(sock)
    finally:
        notifier.close()


def test_watchdog_is_rate_limited_to_a_third_of_the_interval(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    notifier = Notifier(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "300000", "WATCHDOG_PID": str(os.getpid())}
    )
    try:
        assert notifier.watchdog_interval_s == pytest.approx(0.1)
        first = time.monotonic()
        for _ in range(10_000):
            notifier.watchdog()
        assert receive(sock) == "WATCHDOG=1"
        if time.monotonic() - first < notifier.watchdog_interval_s:
            assert nothing_waiting(sock)
        # Keep calling as a hot loop does until the next ping is due and arrives.
        sock.settimeout(0.005)
        deadline = time.monotonic() + RECV_TIMEOUT_S
        while True:
            notifier.watchdog()
            try:
                message = receive(sock)
                break
            except TimeoutError:
                assert time.monotonic() < deadline, "second WATCHDOG=1 never came"
        assert message == "WATCHDOG=1"
        assert time.monotonic() - first >= notifier.watchdog_interval_s
    finally:
        notifier.close()


def test_abstract_socket_names_start_with_at() -> None:
    name = f"inboxd-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(RECV_TIMEOUT_S)
    notifier = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "30000000"})
    try:
        assert notifier.watchdog_interval_s == pytest.approx(10.0)
        notifier.ready()
        notifier.watchdog()
        assert receive(sock) == "READY=1"
        assert receive(sock) == "WATCHDOG=1"
    finally:
        notifier.close()
        sock.close()


def test_reads_the_process_environment(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    notifier = Notifier()
    try:
        notifier.ready()
        assert receive(sock) == "READY=1"
    finally:
        notifier.close()


def test_watchdog_meant_for_another_process_is_ignored(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    notifier = Notifier(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "300000", "WATCHDOG_PID": str(os.getpid() + 1)}
    )
    try:
        assert notifier.watchdog_interval_s == 0.0
        notifier.watchdog()
        assert nothing_waiting(sock)
    finally:
        notifier.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "300000"})
    assert not notifier.enabled
    assert notifier.watchdog_interval_s == 0.0
    notifier.ready()
    notifier.status("x")
    notifier.watchdog()
    notifier.stopping()
    assert notifier.send("READY=1") is False


def test_send_failures_never_raise(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens.sock")})
    try:
        assert notifier.enabled
        notifier.ready()
        notifier.stopping()
        assert notifier.send("STATUS=x") is False
    finally:
        notifier.close()


def test_environment_parsing() -> None:
    assert socket_address("") is None
    assert socket_address("relative/path") is None
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@name") == b"\0name"
    assert watchdog_usec({"WATCHDOG_USEC": "nope"}, 1) == 0
    assert watchdog_usec({"WATCHDOG_USEC": "5", "WATCHDOG_PID": "x"}, 1) == 0
    assert watchdog_usec({"WATCHDOG_USEC": "5", "WATCHDOG_PID": "1"}, 1) == 5
