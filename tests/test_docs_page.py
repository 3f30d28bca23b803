"""`/docs` in headless Chromium: Swagger UI from the package's own files, under the CSP.

Every request the page makes is recorded: none may leave 127.0.0.1, and no
`securitypolicyviolation` event or console error may occur.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from web_fixtures import make_context, serving

# The Playwright driver's executor thread lives as long as the module's browser.
pytestmark = [pytest.mark.browser, pytest.mark.allow_thread_leak]

STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
UI_TIMEOUT_MS = 20_000
TOKEN = "docs-token-42"
# Collects CSP violations in the page itself: the console does not report them all.
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""

if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
sync_api: Any = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
expect = sync_api.expect


@contextlib.contextmanager
def docs_page(
    browser: Any, url: str, token: str | None = None
) -> Iterator[tuple[Any, dict[str, list[str]]]]:
    """The /docs page; yields (page, what it did: requests, problems)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(WATCH_CSP)
    if token:
        context.add_init_script(f"sessionStorage.setItem('inboxd.token', {token!r});")
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    seen: dict[str, list[str]] = {"requests": [], "problems": []}
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("console", lambda m: seen["problems"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["problems"].append(str(e)))
    try:
        page.goto(f"{url}/docs")
        yield page, seen
        seen["problems"] += page.evaluate("window.__csp")
    finally:
        context.close()


def assert_stayed_local(seen: dict[str, list[str]]) -> None:
    hosts = {urlsplit(u).hostname for u in seen["requests"] if not u.startswith("data:")}
    assert hosts == {"127.0.0.1"}, seen["requests"]
    assert seen["problems"] == []


def test_docs_render_every_operation_offline_under_the_csp(browser: Any, tmp_path: Path) -> None:
    with serving(make_context(tmp_path, static_dir=STATIC)) as url:
        csp = httpx.get(f"{url}/docs").headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        with docs_page(browser, url) as (page, seen):
            expect(page.locator(".opblock-summary-path").first).to_be_visible()
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            assert {"/stats", "/metrics", "/logs/{name}", "/tap"} <= {p.strip() for p in paths}
            page.locator("#operations-default-stats_stats_get .opblock-summary").click()
            page.get_by_role("button", name="Try it out").click()
            page.get_by_role("button", name="Execute").click()
            live = page.locator(".live-responses-table tbody .response-col_status")
            expect(live.first).to_have_text("200")
            expect(page.locator(".live-responses-table")).to_contain_text("tag_router")
    assert_stayed_local(seen)
    assert any(u.endswith("/static/swagger-ui/swagger-ui-bundle.js") for u in seen["requests"])


def test_docs_send_the_dashboard_token(browser: Any, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, static_dir=STATIC, token=TOKEN)
    with serving(ctx) as url:
        assert httpx.get(f"{url}/docs").status_code == 200, "the page itself is open"
        assert httpx.get(f"{url}/openapi.json").status_code == 401
        with docs_page(browser, url, token=TOKEN) as (page, seen):
            expect(page.locator(".opblock-summary-path").first).to_be_visible()
            expect(page.locator(".auth-wrapper .authorize")).to_be_visible()
    assert_stayed_local(seen)
