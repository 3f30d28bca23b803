"""The dashboard page in headless Chromium, against the real daemon started as a user does.

Set INBOXD_SCREENSHOT=<file.png> (and optionally INBOXD_SCREENSHOT_FEED_S=60) to keep
this test's screenshot; the ones in docs/ come from test_dashboard_layout.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_fixtures import running_daemon, sample_lines, sync_api, wait_for_lines

# The Playwright driver's executor thread lives as long as the module's browser.
pytestmark = [pytest.mark.browser, pytest.mark.allow_thread_leak]

TOKEN = "dash-token-1234"
UI_TIMEOUT_MS = 15_000

expect = sync_api.expect

Daemon = tuple[str, dict[str, Any]]

HOSTILE_IMG = "<img src=x onerror=alert(1)>"
HOSTILE_SCRIPT = "<script>alert(2)</script>"
HOSTILE_LINE = f"2025-01-01T00:00:00 ERROR upload failed {HOSTILE_IMG} {HOSTILE_SCRIPT}"
HOSTILE_NAME = "<b>x</b>.log"  # the slash makes `<b>x<` a folder: still one path in /files
NEEDLE = "needle-7f3a in a haystack"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One traced daemon that has ingested ordinary, hostile and needle lines."""
    files = {
        "app.log": sample_lines(160),
        HOSTILE_NAME: [HOSTILE_LINE, f"INFO {NEEDLE}", "WARN disk at 91%"],
    }
    with running_daemon(tmp_path_factory.mktemp("dash"), files, "--trace") as (url, _):
        stats = wait_for_lines(url, 163)
        yield url, stats


@contextlib.contextmanager
def open_page(browser: Any, url: str) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A fresh page on `url`; yields (page, console errors and page errors, dialogs)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    problems: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    try:
        page.goto(url)
        yield page, problems, dialogs
    finally:
        context.close()


def test_page_loads_without_console_errors_or_csp_violations(browser: Any, daemon: Daemon) -> None:
    url, _ = daemon
    with open_page(browser, url) as (page, problems, dialogs):
        expect(page.locator("#processors tr").first).to_be_visible()
        expect(page.locator("#health")).to_have_text("ok")
        expect(page.locator("#version")).to_have_text(re.compile(r"^\d+\.\d+"))
        expect(page.locator("#tracing")).to_have_text("on")
        expect(page.locator("#files tr").first).to_be_visible()
        expect(page.locator("#log .log-line").first).to_be_visible()
        page.locator("#panel-traces").scroll_into_view_if_needed()
        expect(page.locator("#traces tr").first).to_be_visible()
        expect(page.locator("#chart svg")).to_be_visible()
        for label in ("1 h", "24 h", "7 d", "live"):
            page.get_by_role("button", name=label, exact=True).click()
            expect(page.get_by_role("button", name=label, exact=True)).to_have_attribute(
                "aria-pressed", "true"
            )
            expect(page.locator("#chart svg")).to_be_visible()
        expect(page.locator("#traffic")).to_contain_text("last update")
    assert problems == []
    assert dialogs == []


def test_processor_table_matches_stats(browser: Any, daemon: Daemon) -> None:
    url, stats = daemon
    with open_page(browser, url) as (page, problems, _):
        rows = page.locator("#processors tr")
        expect(rows).to_have_count(len(stats))
        names = [f"{name}" for name in stats]
        expect(rows.locator("td:first-child")).to_have_text(names)
        expect(rows.locator("td.count")).to_have_text([f"{s['count']:,}" for s in stats.values()])
        expect(rows.locator("td.errors")).to_have_text([f"{s['errors']:,}" for s in stats.values()])
    assert stats["explode"]["errors"] == 2 * stats["explode"]["count"] > 0
    assert problems == []


def test_hostile_text_is_shown_as_text_and_runs_nothing(browser: Any, daemon: Daemon) -> None:
    url, _ = daemon
    with open_page(browser, url) as (page, problems, dialogs):
        errors = page.locator("#errors")
        expect(errors.locator(".line", has_text=HOSTILE_IMG).first).to_be_visible()
        expect(errors.locator(".line").first).to_contain_text(HOSTILE_SCRIPT)
        expect(errors).to_contain_text(f"ValueError: cannot parse {HOSTILE_LINE}")
        expect(page.locator("#files")).to_contain_text(HOSTILE_NAME)
        page.locator("#panel-deadletter").scroll_into_view_if_needed()
        expect(page.locator("#deadletter .line", has_text=HOSTILE_IMG).first).to_be_visible()
        page.locator("#panel-traces").scroll_into_view_if_needed()
        expect(page.locator("#traces td.line", has_text=HOSTILE_IMG).first).to_be_visible()
        expect(page.locator("#traces")).to_contain_text(HOSTILE_NAME)
        for markup in ("img", "script", "b"):
            assert page.locator(f"main {markup}").count() == 0
    assert dialogs == []
    assert problems == []


def test_trace_explorer_finds_a_line_by_text(browser: Any, daemon: Daemon) -> None:
    url, _ = daemon
    with open_page(browser, url) as (page, problems, _):
        page.locator("#trace-q").fill("NEEDLE-7F3A")
        page.get_by_role("button", name="search").click()
        rows = page.locator("#traces tr")
        expect(rows).to_have_count(1)
        expect(rows.locator("td.line")).to_have_text(f"INFO {NEEDLE}")
        expect(rows.locator(".tag")).to_have_text(["start", "info", "redact", "end"])
        page.locator("#trace-q").fill("")
        page.locator("#trace-tag").fill("error")
        page.locator("#trace-file").fill("</b>")
        page.get_by_role("button", name="search").click()
        expect(rows.first.locator("td.line")).to_have_text(HOSTILE_LINE)
    assert problems == []


def test_token_is_asked_once_then_data_shows(browser: Any, tmp_path: Path) -> None:
    files = {"app.log": sample_lines(40)}
    with running_daemon(tmp_path, files, "--token", TOKEN) as (url, _):
        assert httpx.get(f"{url}/stats").status_code == 401
        assert httpx.get(f"{url}/files").status_code == 401
        assert httpx.get(f"{url}/health").status_code == 200
        assert httpx.get(f"{url}/").status_code == 200
        stats = wait_for_lines(url, 40, TOKEN)
        with open_page(browser, url) as (page, problems, dialogs):
            expect(page.locator("#auth")).to_be_visible()
            page.locator("#auth-token").fill("wrong")
            page.get_by_role("button", name="Open dashboard").click()
            expect(page.locator("#auth-error")).to_be_visible()
            page.locator("#auth-token").fill(TOKEN)
            page.get_by_role("button", name="Open dashboard").click()
            expect(page.locator("#auth")).to_be_hidden()
            expect(page.locator("#processors tr")).to_have_count(len(stats))
            expect(page.locator("#processors td.count").first).to_have_text("40")
            expect(page.locator("#files tr").first).to_be_visible()
            page.reload()
            expect(page.locator("#processors tr")).to_have_count(len(stats))
            expect(page.locator("#auth")).to_be_hidden()
        unauthorized = [p for p in problems if "401" not in p]
        assert unauthorized == []
        assert dialogs == []


def test_live_updates_stay_small_and_screenshot(browser: Any, tmp_path: Path) -> None:
    """Feed lines while the page polls; measure bytes per update; take the screenshot."""
    # Errors are fetched every few polls, 25 KB at a time here: a window of a dozen polls
    # averages them out (6 s read 11.7 - 17.9 KB a poll, by where the window fell).
    feed_s = float(os.environ.get("INBOXD_SCREENSHOT_FEED_S", "12"))
    out = Path(os.environ.get("INBOXD_SCREENSHOT", str(tmp_path / "dashboard.png")))
    files = {
        "api/access.log": sample_lines(300),
        "worker/jobs.log": [HOSTILE_LINE, *sample_lines(50, 300)],
        "billing/invoices.log": sample_lines(120, 400),
    }
    with running_daemon(tmp_path, files, "--trace") as (url, inbox):
        with open_page(browser, url) as (page, problems, _):
            responses: list[tuple[float, str, int]] = []
            page.on(
                "response",
                lambda r: responses.append((time.monotonic(), r.url, len(r.body()))),
            )
            expect(page.locator("#processors tr").first).to_be_visible()
            expect(page.locator("#errors tr").first).to_be_visible()
            expect(page.locator("#files tr").first).to_be_visible()
            steady = time.monotonic()
            total = 471
            deadline = time.monotonic() + feed_s
            batch = 0
            while time.monotonic() < deadline:
                batch += 1
                size = 40 + (batch * 37) % 160
                with (inbox / "api" / "access.log").open("a") as f:
                    f.writelines(line + "\n" for line in sample_lines(size, total))
                total += size
                page.wait_for_timeout(250)  # paces the feed, like a busy service
            wait_for_lines(url, total)
            page.wait_for_timeout(1500)  # two more polls, so the table shows the end
            page.screenshot(path=str(out))
        assert problems == []
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    window = [r for r in responses if r[0] >= steady]
    polls = [r for r in window if r[1].split("?")[0].endswith("/live")]
    assert len(polls) >= 2
    per_update = sum(r[2] for r in window) / len(polls)
    live = sum(r[2] for r in polls) / len(polls)
    print(f"live update: {per_update:.0f} body bytes on average over {len(polls)} polls, "
          f"{live:.0f} of them /live")  # fmt: skip
    assert live < 3_000  # the once-a-second request itself
    assert per_update < 16_000
