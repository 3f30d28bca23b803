"""Helpers of tests/test_service.py that run in a worker process of their own."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

from cli.settings import Settings
from watcher.workers import child
from watcher.workers.pool import worker_spec


def sampler_threads_after_main(left: Any) -> None:
    """Run a worker's loop until ("stop",), then count its sampler threads still alive.

    Runs as a forked process's target: the loop ties itself to the parent and ignores
    SIGTERM, which the test process must not do.
    """
    ctx = multiprocessing.get_context("fork")
    daemon_end, worker_end = child.channel_pair(ctx)
    name = ctx.Array("c", child.NAME_BYTES, lock=False)
    slots = ctx.Array("q", 2, lock=False)
    spec = worker_spec(Settings(pipeline={"start": "processors.builtin:keep"}))
    daemon_end.send(("stop",))
    child.main(worker_end, spec, name, slots)
    left.value = sum(1 for t in threading.enumerate() if t.name == "inboxd-worker-sampler")
