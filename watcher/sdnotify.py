"""The sd_notify protocol, spoken directly: READY, STATUS, STOPPING and WATCHDOG.

systemd hands a `Type=notify` service the path of a datagram socket in NOTIFY_SOCKET
(a file path, or `@name` for an abstract socket) and, with `WatchdogSec=`, the interval
in WATCHDOG_USEC. Each message is one datagram of `KEY=value` lines. Writing the few
lines here avoids a dependency and keeps the hot-loop call to one clock comparison.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger("inboxd.sdnotify")

# systemd asks for a ping at least every WATCHDOG_USEC; sending at a third of it leaves
# room for one late loop iteration and one lost datagram.
WATCHDOG_FRACTION = 3


def socket_address(value: str) -> str | bytes | None:
    """NOTIFY_SOCKET as an AF_UNIX address: a path, or a NUL-led name for `@name`."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None


def watchdog_usec(env: Mapping[str, str], pid: int) -> int:
    """The watchdog interval meant for this process, or 0 when there is none."""
    watchdog_pid = env.get("WATCHDOG_PID")
    if watchdog_pid:
        try:
            if int(watchdog_pid) != pid:
                return 0
        except ValueError:
            return 0
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return 0
    return max(usec, 0)


class Notifier:
    """Tells systemd where the daemon is; does nothing outside a `Type=notify` unit.

    Thread-safety: sending is one sendto() on a datagram socket and may happen from any
    thread; the watchdog deadline is a single float whose racy update at worst sends one
    extra ping. Failures never raise: systemd going away must not stop log processing.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self._address = socket_address(env.get("NOTIFY_SOCKET", ""))
        usec = watchdog_usec(env, os.getpid()) if self._address is not None else 0
        self._watchdog_interval_s = usec / 1_000_000 / WATCHDOG_FRACTION if usec else 0.0
        self._next_ping = 0.0
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float:
        """Seconds between WATCHDOG=1 pings; 0.0 when systemd set no watchdog."""
        return self._watchdog_interval_s

    def ready(self) -> None:
        self.send("READY=1")

    def status(self, text: str) -> None:
        # A newline would start a new KEY=value assignment.
        self.send("STATUS=" + " ".join(text.splitlines()))

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def watchdog(self) -> None:
        """Ping the watchdog if due; cheap enough to call on every loop iteration."""
        if not self._watchdog_interval_s:
            return
        now = time.monotonic()
        if now < self._next_ping:
            return
        self._next_ping = now + self._watchdog_interval_s
        self.send("WATCHDOG=1")

    def next_ping_in(self, now: float) -> float:
        """Seconds from `now` (monotonic) until a ping is due; inf without a watchdog.

        The processing loop bounds its idle wait by this, so that it wakes in time to ping.
        """
        if not self._watchdog_interval_s:
            return math.inf
        return max(self._next_ping - now, 0.0)

    def send(self, message: str) -> bool:
        """Send one datagram; True when it left, False when disabled or it failed."""
        if self._address is None:
            return False
        data = message.encode("utf-8", "replace")
        try:
            with self._lock:
                if self._sock is None:
                    self._sock = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                self._sock.sendto(data, self._address)
        except OSError as exc:
            log.debug("sd_notify %r failed: %s", message, exc)
            return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


__all__ = ["Notifier", "socket_address", "watchdog_usec"]
