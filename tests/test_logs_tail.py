"""`GET /logs/{name}?tail=N` reads from the end, in time linear in what it returns."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from web_fixtures import make_context, no_thread_leak, serving  # noqa: F401

from store.logfiles import read_log

LINE = "x" * 699 + "\n"


def test_tail_over_http_returns_the_last_lines(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "inboxd.log").write_text("".join(f"line {i}\n" for i in range(1000)) + "partial")
    with serving(make_context(tmp_path)) as url:
        three = httpx.get(f"{url}/logs/inboxd.log", params={"tail": 3}).text
        everything = httpx.get(f"{url}/logs/inboxd.log").text
    assert three == "line 998\nline 999\npartial"
    assert everything.count("\n") == 1000


def test_tail_of_many_long_lines_is_not_quadratic(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    count = 48 * 1024 * 1024 // len(LINE)
    (logs / "inboxd.log").write_text(LINE * count)
    start = time.perf_counter()
    whole = read_log(logs, "inboxd.log")
    whole_s = time.perf_counter() - start
    start = time.perf_counter()
    tail = read_log(logs, "inboxd.log", count - 1)
    tail_s = time.perf_counter() - start
    assert len(tail) == len(whole) - len(LINE)
    # Gathering 48 MiB backwards by prepending took over 40 times a plain read.
    assert tail_s < 8 * whole_s + 0.3, (tail_s, whole_s)
