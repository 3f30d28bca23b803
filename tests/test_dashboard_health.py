"""The page shows /health as a banner naming each check that is not ok, with its reason,
and hides it again once everything is ok; and the sinks, each with its state and why it
is degraded (Chromium, real server, real static files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dashboard_fixtures import sync_api
from web_fixtures import HOOK_REASON, install_sinks, make_context, populated_telemetry, serving

pytestmark = [pytest.mark.browser, pytest.mark.allow_thread_leak]
expect = sync_api.expect
STATIC = Path(__file__).resolve().parent.parent / "web" / "static"


def test_banner_names_the_checks_that_are_not_ok(browser: Any, tmp_path: Path) -> None:
    telemetry = populated_telemetry()
    health = telemetry.health
    health.set("disk", "degraded", "outbox a.log: OSError: No space left on device")
    with serving(make_context(tmp_path, telemetry=telemetry, static_dir=STATIC)) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(url)
            banner = page.locator("#health-banner")
            expect(banner).to_be_visible()
            expect(banner).to_contain_text("disk degraded: outbox a.log: OSError: No space left")
            expect(banner).to_have_class("banner banner-warn")
            expect(page.locator("#health")).to_have_text("degraded")
            health.set("engine", "failing", "tag_router on app.log:12 for 42 s")
            expect(banner).to_contain_text("engine failing: tag_router on app.log:12")
            expect(banner).to_have_class("banner banner-bad")
            health.ok("disk")
            health.ok("engine")
            expect(banner).to_be_hidden()
            expect(page.locator("#health")).to_have_text("ok")
            expect(page.locator("#panel-sinks")).to_be_hidden()  # no sink configured
        finally:
            page.close()


SINK_SIZES = {"desktop": (1400, 900), "phone": (390, 844)}


def test_sinks_panel_shows_each_sink_and_why_it_is_degraded(browser: Any, tmp_path: Path) -> None:
    telemetry = populated_telemetry()
    board = install_sinks(telemetry)
    with serving(make_context(tmp_path, telemetry=telemetry, static_dir=STATIC)) as url:
        for size, (width, height) in SINK_SIZES.items():
            page = browser.new_page(viewport={"width": width, "height": height})
            problems: list[str] = []
            page.on("pageerror", lambda e, p=problems: p.append(str(e)))
            try:
                page.goto(url)
                rows = page.locator("#sinks tr.sink-row")
                expect(rows).to_have_count(4)
                expect(rows.locator("td.name")).to_have_text(
                    ["end (outbox)", "alerts", "rows", "hook"]
                )
                expect(rows.locator("td.lines")).to_have_text(["290", "40", "30", "300"])
                hook = page.locator('#sinks tr.sink-row[data-sink="hook"]')
                expect(hook.locator("td.pending")).to_have_text("120")
                expect(hook.locator("td.errors")).to_have_text("3")
                expect(hook.locator("td.status .pill")).to_have_text("degraded")
                reasons = page.locator("#sinks tr.sink-reason")
                expect(reasons).to_have_count(1)
                expect(reasons).to_have_attribute("data-sink", "hook")
                expect(reasons).to_contain_text(HOOK_REASON)
                expect(reasons).to_be_visible()
                alerts = page.locator('#sinks tr.sink-row[data-sink="alerts"]')
                expect(alerts.locator("td.status")).to_have_text("ok")
                assert page.evaluate("document.documentElement.scrollWidth") <= width, size
                for name in ("sink", "lines", "pending", "errors", "status"):
                    header = page.locator("#panel-sinks thead th", has_text=name).first
                    box = header.bounding_box()
                    assert box is not None and box["x"] + box["width"] <= width, (size, name)
            finally:
                page.close()
            assert problems == [], size
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(url)
            alerts_rate = page.locator('#sinks tr.sink-row[data-sink="alerts"] td.rate')
            expect(alerts_rate).to_have_text("0")  # two polls, nothing delivered between
            board.delivered("alerts", 5000)
            board.delivered("hook", 50, pending=0)
            hook = page.locator('#sinks tr.sink-row[data-sink="hook"]')
            expect(hook.locator("td.status")).to_have_text("ok")
            expect(page.locator("#sinks tr.sink-reason")).to_have_count(0)
            expect(hook.locator("td.lines")).to_have_text("350")
            expect(alerts_rate).not_to_have_text("0")
            expect(page.locator('#sinks tr.sink-row[data-sink="alerts"] td.lines')).to_have_text(
                "5,040"
            )
        finally:
            page.close()
