"""The page shows /health as a banner naming each check that is not ok, with its reason,
and hides it again once everything is ok (Chromium, real server, real static files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_dashboard import sync_api
from web_fixtures import make_context, populated_telemetry, serving

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
        finally:
            page.close()
