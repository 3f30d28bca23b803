"""Shared test guards (a test that leaves threads running fails) and fixtures."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_fixtures import MakeDaemon, daemon_factory
from http_receiver import Receiver
from ops_fixtures import OPS_START_TIMEOUT_S
from sender_fixtures import receiver_factory, senders_made, spool_database

THREAD_GRACE_S = 2.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "allow_thread_leak: the test may leave threads running (say why)"
    )


@pytest.fixture(autouse=True)
def no_thread_leak(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test whose new threads are still alive after a short grace period."""
    before = set(threading.enumerate())
    yield
    if request.node.get_closest_marker("allow_thread_leak"):
        return
    deadline = time.monotonic() + THREAD_GRACE_S
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in leaked:
        thread.join(max(deadline - time.monotonic(), 0.0))
    alive = [t.name for t in leaked if t.is_alive()]
    assert not alive, f"threads left running: {alive}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright, one per test module.

    The browser test modules import dashboard_fixtures, which skips them when Chromium or
    Playwright is missing; the import here runs only for a test that asks for a browser.
    """
    from dashboard_fixtures import CHROMIUM, CHROMIUM_ARGS, sync_api

    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def make_daemon(tmp_path: Path) -> Iterator[MakeDaemon]:
    """Daemons (see daemon_fixtures.Daemon) rooted in tmp_path; any left running killed."""
    yield from daemon_factory(tmp_path)


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[MakeDaemon]:
    """Daemons with the daemon's own flush interval; any still running at the end is killed."""
    yield from daemon_factory(tmp_path, flush_interval=None, start_timeout=OPS_START_TIMEOUT_S)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback HTTP receiver told how to answer (tests/http_receiver.py)."""
    yield from receiver_factory()


@pytest.fixture
def spool_db(tmp_path: Path) -> Path:
    """A state database with its schema and instance id, for the http sink's sender."""
    return spool_database(tmp_path)


@pytest.fixture
def made() -> Iterator[list[Any]]:
    """Senders a test made; stopped and closed at its end."""
    yield from senders_made()
