"""The dashboard's browser tests share these: Chromium and Playwright (a module that
imports this one is skipped when either is missing) and the daemon started as a user does.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from net_fixtures import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0

if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
sync_api: Any = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)

# A pipeline like the default one, but its error branch always fails, so that error-level
# lines show up in /errors (with retries) and in the dead letters.
RULES = """
def explode(line):
    raise ValueError("cannot parse " + line)
    yield "end", line
"""
CONFIG = """
[pipeline]
start = "processors.builtin:tag_router"
error = { processor = "dash_rules:explode", retries = 1 }
warn = "processors.builtin:keep"
info = "processors.builtin:keep"
debug = "processors.builtin:drop"
redact = "processors.builtin:redact_secrets"
"""


def sample_lines(n: int, offset: int = 0) -> list[str]:
    """`n` timestamped lines at mixed levels, numbered from `offset`."""
    levels = ("INFO", "INFO", "INFO", "WARN", "DEBUG", "INFO", "ERROR", "INFO")
    return [
        f"2025-01-01T00:00:{i % 60:02d} {levels[i % len(levels)]} request {i + offset} done"
        for i in range(n)
    ]


@contextlib.contextmanager
def running_daemon(
    base: Path, files: dict[str, list[str]], *extra: str
) -> Iterator[tuple[str, Path]]:
    """`python daemon.py` on a free port with a failing error branch over an inbox that
    already holds `files`, as when a service starts on a backlog; yields (url, inbox)."""
    inbox, state = base / "inbox", base / "var"
    inbox.mkdir(parents=True)
    for name, lines in files.items():
        write_file(inbox, name, lines)
    (base / "dash_rules.py").write_text(RULES)
    (base / "inboxd.toml").write_text(CONFIG)
    port = free_port()
    args = [sys.executable, "daemon.py", "--inbox", str(inbox), "--outbox", str(base / "out")]
    args += ["--state-dir", str(state), "--config", str(base / "inboxd.toml")]
    args += ["--port", str(port), "--flush-interval", "1", *extra]
    log = (base / "daemon.out").open("wb")
    proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:

        def is_up() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"daemon exited {proc.returncode}: {(base / 'daemon.out').read_text()}")
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(is_up, timeout=START_TIMEOUT_S)
        yield url, inbox
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)
        log.close()


def get_stats(url: str, token: str | None = None) -> dict[str, dict[str, float]]:
    """GET /stats, with the bearer token when the daemon asks for one."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{url}/stats", headers=headers, timeout=5)
    response.raise_for_status()
    doc: dict[str, dict[str, float]] = response.json()
    return doc


def wait_for_lines(url: str, expected: int, token: str | None = None) -> dict[str, Any]:
    """Wait until the entry processor has seen `expected` lines; the final /stats."""

    def settled() -> dict[str, Any] | None:
        stats = get_stats(url, token)
        return stats if stats.get("tag_router", {}).get("count") == expected else None

    result: dict[str, Any] = wait_for(settled, timeout=START_TIMEOUT_S)
    return result


def write_file(inbox: Path, name: str, lines: list[str]) -> None:
    """`lines` into inbox/name, making the folders the name holds."""
    target = inbox / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(line + "\n" for line in lines))
