"""The dashboard's live chart in headless Chromium, against a real uvicorn server: it
draws its first point within about a second of load, and going to a history range and
back to live keeps the points gathered so far.

The chart container `#chart` carries `data-points`: how many points its lines show.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_fixtures import sync_api
from web_fixtures import make_context, serving

from web.app import DEFAULT_STATIC_DIR

pytestmark = [pytest.mark.browser, pytest.mark.allow_thread_leak]
expect = sync_api.expect

# The page polls every 1000 ms: its first point must come well before a second round.
FIRST_POINT_MS = 700


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "inboxd.log").write_text("started\n")
    with serving(make_context(tmp_path, static_dir=DEFAULT_STATIC_DIR)) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        problems: list[str] = []
        tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: problems.append(str(e)))
        tab.url_for_test = url
        try:
            yield tab
        finally:
            context.close()
        assert problems == []


def points(page: Any) -> int:
    value = page.locator("#chart").get_attribute("data-points")
    return int(value or 0)


def test_first_point_is_drawn_well_within_a_second_of_load(page: Any) -> None:
    page.goto(page.url_for_test, wait_until="commit")
    # Read in the page when the point shows: milliseconds since the page's scripts ran
    # (deferred scripts run just before DOMContentLoaded), free of the browser's own
    # start-up. A second poll at the usual pace would take at least POLL_MS.
    since_load = page.wait_for_function(
        "() => Number(document.getElementById('chart').dataset.points || 0) >= 1"
        " && performance.now()"
        " - performance.getEntriesByType('navigation')[0].domContentLoadedEventStart",
        polling="raf",
    ).json_value()
    assert since_load <= FIRST_POINT_MS, since_load
    expect(page.locator("#chart .dot, #chart .series").first).to_be_attached()


def test_back_to_live_keeps_the_points_gathered(page: Any) -> None:
    page.goto(page.url_for_test)
    page.wait_for_function(
        "() => Number(document.getElementById('chart').dataset.points || 0) >= 12"
    )
    before = points(page)
    page.get_by_role("button", name="1 h").click()
    expect(page.get_by_role("button", name="1 h")).to_have_attribute("aria-pressed", "true")
    page.wait_for_timeout(2500)  # the history range drawn while the live polls go on
    page.get_by_role("button", name="live").click()
    after = points(page)  # the click redraws at once, before the next poll
    assert after >= before >= 12, (before, after)
