"""`Service`: the one way inboxd owns a thread.

Every part that runs in the background (the processing thread, the watcher, the
flusher, the sink senders, the web server) has the same surface, so that the daemon
starts, supervises and stops them from one list: `start()` once, an idempotent
`stop()` that only asks, `join(timeout)` that waits, `is_alive()`, and `error`, the
exception that ended the loop (None while it runs or when it ended normally).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

log = logging.getLogger("inboxd")


class Service:
    """Base of everything that owns a thread; subclasses write `run()`.

    `run()` loops until the stop Event (`self._stop`) is set, waiting on it
    (`self._stop.wait(timeout)`) rather than sleeping, so that stop() is seen at once.
    `on_stop()` may wake a loop that waits on something else. An exception that escapes
    `run()` is kept in `error` and passed to `on_error()` (a critical log line by
    default); then `on_exit()` releases what the thread held, whichever way the loop
    ended, and the thread ends: `is_alive()` false with `error` set is what the daemon
    reads as a bug, and exits non-zero.

    A second start() is a no-op, and so is a start() after stop(): a stopped service
    stays stopped. stop() before start() is harmless; join() before start() returns at
    once.

    Thread-safety: start() and join() are called by the owner; stop(), is_alive() and
    `error` may be used from any thread (stop only sets the Event and calls on_stop()).
    """

    def __init__(self, name: str, *, thread_name: str) -> None:
        # What the daemon's log lines call this part ("engine", "flusher", ...).
        self.name = name
        self.thread_name = thread_name
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop_asked = False

    def start(self) -> None:
        """Start the thread (once); a no-op when started or stopped already."""
        with self._lock:
            if self._thread is not None or self._stop_asked:
                return
            self._thread = threading.Thread(target=self._main, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the loop to end; never waits. Safe to call repeatedly and before start()."""
        with self._lock:
            if self._stop_asked:
                return
            self._stop_asked = True
        self._stop.set()
        self.on_stop()

    def join(self, timeout: float | None = None) -> None:
        """Wait up to `timeout` seconds for the thread to end (no-op if never started)."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def is_alive(self) -> bool:
        """True while the thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the loop; None while it runs or if it ended normally."""
        return self._error

    @property
    def is_started(self) -> bool:
        """True once start() launched the thread."""
        return self._thread is not None

    @property
    def is_stopping(self) -> bool:
        """True once stop() was called."""
        return self._stop.is_set()

    def run(self) -> None:
        """The loop, in the service's thread; ends when the stop Event is set."""
        raise NotImplementedError

    def on_stop(self) -> None:
        """Called once, by the thread that calls stop(), after the stop Event is set."""

    def on_error(self, exc: BaseException) -> None:
        """Called in the service's thread when `run()` raised `exc` (kept in `error`)."""
        log.critical("%s thread died: %s", self.name, exc, exc_info=exc,
                     extra={"event": "thread_died", "worker": self.name})  # fmt: skip

    def wait_started(self) -> None:
        """Return once the service can be relied upon; raise InboxdError if it cannot.

        The daemon calls it right after start(), before starting the next service.
        """

    def on_exit(self) -> None:
        """Called in the service's thread once the loop ended, after `error` is set."""

    def _main(self) -> None:
        try:
            self.run()
        except BaseException as exc:
            self._error = exc
            self.on_error(exc)
        finally:
            self.on_exit()


def start_in_order(services: Sequence[Service]) -> None:
    """Start each service and wait until it is started, in list order."""
    for service in services:
        log.debug(
            "starting %s", service.name, extra={"event": "service_start", "service": service.name}
        )
        service.start()
        service.wait_started()


def stop_in_reverse(services: Sequence[Service], timeout: float) -> None:
    """Stop and join each service in the reverse of the start order, `timeout` each.

    Each one is joined before the next is asked to stop, so that a service never
    loses one it depends on (started before it) while it finishes.
    """
    for service in reversed(services):
        log.debug(
            "stopping %s", service.name, extra={"event": "service_stop", "service": service.name}
        )
        service.stop()
        service.join(timeout)


def first_dead(services: Sequence[Service]) -> Service | None:
    """The first service whose thread is no longer alive, or None."""
    return next((s for s in services if not s.is_alive()), None)


__all__ = ["Service", "first_dead", "start_in_order", "stop_in_reverse"]
