"""A stand-in for systemd's notify socket, and the longest gap between watchdog pings.

Shared by the end-to-end tests of READY, STATUS, WATCHDOG and STOPPING messages.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx


class NotifyListener:
    """A bound AF_UNIX datagram socket standing in for systemd; records what arrives.

    On READY=1 it asks GET /health at once, so the test knows whether the server was
    already answering when READY was sent.
    """

    def __init__(self, path: Path, health_url: Callable[[], str]) -> None:
        self.messages: list[tuple[float, str]] = []
        self.health_at_ready: list[int | str] = []
        self._health_url = health_url
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify-listener")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            at, text = time.monotonic(), data.decode()
            if text == "READY=1":
                self.health_at_ready.append(self._probe())
            self.messages.append((at, text))

    def _probe(self) -> int | str:
        try:
            return httpx.get(self._health_url() + "/health", timeout=0.5).status_code
        except httpx.HTTPError as exc:
            return repr(exc)

    def times_of(self, message: str) -> list[float]:
        return [t for t, text in list(self.messages) if text == message]

    def starting_with(self, prefix: str) -> list[str]:
        return [text for _, text in list(self.messages) if text.startswith(prefix)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


def max_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch within [start, end] without a ping."""
    points = [start, *(t for t in times if start < t < end), end]
    return max(b - a for a, b in itertools.pairwise(points))
