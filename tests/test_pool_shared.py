"""The supervising thread reads what the workers publish (pool.sample(), busy()) while
the processing thread restarts them: each worker's shared memory is one immutable
snapshot, replaced whole, so a reader holds one process's memory, never half of two."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest
from reader_fixtures import passthrough_pool

from watcher.workers.pool import WorkerPool


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    with passthrough_pool(1) as made:
        yield made


def kill_and_restart(pool: WorkerPool) -> None:
    w = pool.workers[0]
    os.kill(w.process.pid, signal.SIGKILL)
    w.process.join(5)
    pool.check()  # the processing thread starts an idle dead worker again


def test_a_snapshot_taken_before_a_restart_stays_whole(pool: WorkerPool) -> None:
    w = pool.workers[0]
    before = w.shared
    name, slots = before.name, before.slots
    kill_and_restart(pool)
    assert pool.restarts == 1
    assert w.shared is not before, "the restart publishes a new snapshot"
    assert (before.name, before.slots) == (name, slots), "the old one is left as it was"
    assert w.shared.slots is not slots and w.shared.name is not name
    # The fresh process's memory is the one read from now on.
    w.shared.slots[0] = 12345
    assert pool.busy()[0] == 12345


def test_sampling_while_workers_restart(pool: WorkerPool) -> None:
    """The stall watch samples from its own thread through restarts and routing."""
    stop = threading.Event()
    errors: list[BaseException] = []
    samples = [0]

    def sample() -> None:
        while not stop.is_set():
            try:
                pool.sample()
                pool.busy()
                samples[0] += 1
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)
                return

    sampler = threading.Thread(target=sample, name="test-sampler")
    sampler.start()
    try:
        for round_no in range(3):
            kill_and_restart(pool)
            result = pool.collect(pool.submit(b"a\nb", "x.log", 1, 2))
            assert result.out == b"a\nb\n", round_no
    finally:
        stop.set()
        sampler.join(10)
    assert not errors and samples[0] > 0
