"""Service: the one contract of every part that owns a thread, on a tiny subclass and on
the daemon's real services; the daemon stops them in the reverse of the start order."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_fixtures import MakeDaemon, write_config
from http_receiver import Receiver
from sender_fixtures import spool_database
from service_fixtures import sampler_threads_after_main
from web_fixtures import make_context

from cli.settings import VERSION, Settings
from processors.pipeline import load_pipeline
from processors.router import Router
from sinks.base import SenderContext
from sinks.http import HttpSpec
from sinks.senders import Senders
from store.db import connect
from store.flush import Flusher
from store.live.sinkboard import SinkBoard
from store.live.telemetry import Telemetry
from store.service import Service, first_dead, start_in_order, stop_in_reverse
from watcher.dirty import DirtySet
from watcher.engine import Engine
from watcher.observer import InboxWatcher
from watcher.workers.pool import WorkerPool, worker_spec
from web.app import create_app
from web.server import WebServer

WAIT_S = 10.0


class Ticker(Service):
    """Counts ticks until stopped; `gate` (when given) holds the loop past stop()."""

    def __init__(
        self, *, fail: BaseException | None = None, gate: threading.Event | None = None
    ) -> None:
        super().__init__("ticker", thread_name="test-ticker")
        self.ticks = 0
        self.stops = 0
        self.exits = 0
        self.fail = fail
        self.gate = gate

    def run(self) -> None:
        if self.fail is not None:
            raise self.fail
        while not self._stop.wait(0.01):
            self.ticks += 1
        if self.gate is not None:
            self.gate.wait(WAIT_S)

    def on_stop(self) -> None:
        self.stops += 1

    def on_error(self, exc: BaseException) -> None:
        """Quiet: the test reads `error`."""

    def on_exit(self) -> None:
        self.exits += 1


def named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_second_start_starts_no_second_thread() -> None:
    ticker = Ticker()
    ticker.start()
    ticker.start()
    assert ticker.is_alive() and len(named("test-ticker")) == 1
    ticker.stop()
    ticker.join(WAIT_S)
    assert not ticker.is_alive() and ticker.error is None and ticker.exits == 1


def test_stop_is_idempotent_and_calls_on_stop_once() -> None:
    ticker = Ticker()
    ticker.start()
    wait_for(lambda: ticker.ticks > 0, "a tick")
    ticker.stop()
    ticker.stop()
    ticker.join(WAIT_S)
    assert ticker.stops == 1
    assert not ticker.is_alive()


def test_stop_before_start_keeps_the_service_stopped() -> None:
    ticker = Ticker()
    ticker.stop()
    ticker.join(0.1)  # never started: returns at once
    ticker.start()
    assert not ticker.is_alive() and not ticker.is_started
    assert named("test-ticker") == []


def test_stop_does_not_wait_and_join_honours_its_timeout() -> None:
    gate = threading.Event()
    ticker = Ticker(gate=gate)
    ticker.start()
    ticker.stop()
    assert ticker.is_alive()  # stop() only asked: the loop is held at the gate
    started = time.monotonic()
    ticker.join(0.1)
    assert 0.05 <= time.monotonic() - started < 2.0
    assert ticker.is_alive()
    gate.set()
    ticker.join(WAIT_S)
    assert not ticker.is_alive()


def test_the_exception_that_ends_the_loop_is_kept_in_error() -> None:
    boom = RuntimeError("boom")
    ticker = Ticker(fail=boom)
    ticker.start()
    ticker.join(WAIT_S)
    assert not ticker.is_alive()
    assert ticker.error is boom
    assert ticker.exits == 1
    assert first_dead([ticker]) is ticker


def test_services_stop_in_the_reverse_of_the_start_order() -> None:
    order: list[str] = []

    class Recorder(Ticker):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def on_stop(self) -> None:
            # The one started after this one must be gone already.
            order.append(self.name)
            assert all(not s.is_alive() for s in services[services.index(self) + 1 :])

    services = [Recorder(n) for n in ("first", "second", "third")]
    start_in_order(services)
    assert first_dead(services) is None
    stop_in_reverse(services, WAIT_S)
    assert order == ["third", "second", "first"]
    assert all(not s.is_alive() for s in services)


# -- the same contract over the real services ---------------------------------------------


def flusher(tmp_path: Path, receiver: Receiver) -> Service:
    return Flusher(Telemetry(), tmp_path / "var" / "inboxd.db", interval_s=0.05, retention_days=1)


def watcher(tmp_path: Path, receiver: Receiver) -> Service:
    return InboxWatcher(tmp_path / "inbox", DirtySet())


def engine(tmp_path: Path, receiver: Receiver) -> Service:
    settings = Settings(
        inbox=tmp_path / "inbox", outbox=tmp_path / "outbox", state_dir=tmp_path / "var"
    )
    pipeline = load_pipeline({"start": "processors.builtin:keep"})
    return Engine(settings=settings, router=Router(pipeline), telemetry=Telemetry())


def senders(tmp_path: Path, receiver: Receiver) -> Service:
    spool_database(tmp_path)
    spec = HttpSpec("hook", "http", url=receiver.url, batch=5, timeout=2.0, pending_limit=10)
    board = SinkBoard((spec,), Telemetry().health)
    return Senders((spec,), SenderContext(board, tmp_path / "var" / "inboxd.db", VERSION))


def web(tmp_path: Path, receiver: Receiver) -> Service:
    return WebServer(create_app(make_context(tmp_path)), host="127.0.0.1", port=0)


def test_a_group_of_no_sender_lives_from_start_to_stop(tmp_path: Path) -> None:
    """No spooled sink: the group has no thread, yet the daemon's supervision must read
    it alive while it runs, and not before start() or after stop()."""
    board = SinkBoard((), Telemetry().health)
    group = Senders((), SenderContext(board, tmp_path / "inboxd.db", VERSION))
    assert not group.is_alive() and not group.is_started
    group.start()
    assert group.is_alive() and group.is_started
    group.stop()
    group.join(WAIT_S)
    assert not group.is_alive()


@pytest.mark.parametrize("make", [flusher, watcher, engine, senders, web])
def test_every_service_keeps_the_contract(
    make: Callable[[Path, Receiver], Service], tmp_path: Path, receiver: Receiver
) -> None:
    service = make(tmp_path, receiver)
    assert not service.is_alive() and service.error is None and not service.is_started
    service.start()
    try:
        assert service.is_alive() and service.is_started
        threads = set(threading.enumerate())
        service.start()  # a no-op: no second thread
        assert set(threading.enumerate()) == threads
        assert service.is_alive()
        asked = time.monotonic()
        service.stop()
        service.stop()
        assert time.monotonic() - asked < 1.0  # stop() asks, it does not wait
    finally:
        service.stop()
        service.join(WAIT_S)
    assert not service.is_alive()
    assert service.error is None
    service.start()  # a stopped service stays stopped
    assert not service.is_alive()


def test_the_senders_group_reports_a_dead_sender(tmp_path: Path, receiver: Receiver) -> None:
    group = senders(tmp_path, receiver)
    assert isinstance(group, Senders)
    group.start()
    sender = group.senders[0]
    wait_for(lambda: sender.idle, "an idle sender")
    # A table of the spool gone under the sender is a bug-level failure: it ends the thread.
    db = connect(tmp_path / "var" / "inboxd.db")
    db.conn.execute("DROP TABLE spool_batches")
    db.close()
    sender.nudge()
    try:
        wait_for(lambda: not group.is_alive(), "the sender's end")
        assert isinstance(group.error, sqlite3.OperationalError)
        assert first_dead([group]) is group
    finally:
        group.stop()
        group.join(WAIT_S)


# -- the worker's sampler -----------------------------------------------------------------


def test_the_worker_sampler_thread_stops_when_the_worker_loop_ends() -> None:
    ctx = multiprocessing.get_context("fork")
    left = ctx.Value("i", -1)
    process = ctx.Process(target=sampler_threads_after_main, args=(left,))
    process.start()
    process.join(WAIT_S * 3)
    assert process.exitcode == 0
    assert left.value == 0, f"{left.value} sampler thread(s) still running after main()"


# -- the daemon ---------------------------------------------------------------------------


def test_the_daemon_stops_its_services_in_reverse_start_order(make_daemon: MakeDaemon) -> None:
    d = make_daemon().start("--log-level", "debug")
    d.stop()
    records = []
    for line in (d.state_dir / "logs" / "inboxd.log").read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    started = [r["service"] for r in records if r.get("event") == "service_start"]
    stopped = [r["service"] for r in records if r.get("event") == "service_stop"]
    assert started == ["watcher", "sink senders", "engine", "flusher", "web"]
    assert stopped == list(reversed(started))


SLOW_MODULE = """
import pathlib
import time


def slow(line):
    pathlib.Path(__file__).with_name("busy").touch()
    time.sleep(1.5)
    yield "end", line
"""


def test_the_last_batch_is_flushed_though_the_flusher_stops_before_the_engine(
    make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    """SIGTERM while a processor runs: the engine commits the batch after the flusher has
    stopped, and its figures still reach the metrics table."""
    folder = tmp_path / "conf"
    config = write_config(folder, pipeline='start = "slowproc:slow"')
    (folder / "slowproc.py").write_text(SLOW_MODULE)
    d = make_daemon(config=config).start()
    (d.inbox / "app.log").write_text("only line\n")
    wait_for(lambda: (folder / "busy").exists(), "the processor running")
    d.stop()
    assert (d.outbox / "app.log").read_text() == "only line\n"
    db = sqlite3.connect(d.state_dir / "inboxd.db")
    try:
        [(count,)] = db.execute("SELECT SUM(count) FROM metrics WHERE processor = 'slow'")
    finally:
        db.close()
    assert count == 1


def test_the_worker_pool_has_the_service_surface() -> None:
    spec = worker_spec(Settings(pipeline={"start": "processors.builtin:keep"}))
    pool = WorkerPool(spec, 2, poison_after=3, stall_timeout=30.0)
    assert pool.is_alive()  # not started: nothing has died
    pool.start()
    processes = [w.process for w in pool.workers]
    pool.start()  # a no-op: no second set of workers
    assert [w.process for w in pool.workers] == processes
    assert pool.is_alive()
    pool.stop()
    pool.stop()
    pool.join(WAIT_S)
    assert not any(p.is_alive() for p in processes)
    assert not pool.is_alive() and pool.error is None
    pool.start()  # stopped stays stopped
    assert pool.workers == []
