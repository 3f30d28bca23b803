"""The dashboard at desktop (1400x900) and phone (390x844) sizes, against a real daemon:
key columns on screen, nothing wider than the window, readable ticks, hover values and
the error drill-down.

Set INBOXD_SCREENSHOT_DIR=docs to refresh `dashboard.png` and `dashboard-phone.png`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_fixtures import running_daemon, sample_lines, sync_api, wait_for_lines

pytestmark = [pytest.mark.browser, pytest.mark.allow_thread_leak]
expect = sync_api.expect

SIZES = {"desktop": (1400, 900), "phone": (390, 844)}
KEY_COLUMNS = {
    "processors": ("processor", "lines", "errors", "retries"),
    "files": ("path", "lag", "catch-up", "state", "lines"),
    "errors": ("time", "processor", "error and line"),
}
LONG_NAME = "very/long/folder/name/of/a/service/access-2026-11-27.log"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    files = {"app.log": sample_lines(300), LONG_NAME: sample_lines(120)}
    with running_daemon(tmp_path_factory.mktemp("layout"), files, "--trace") as (url, inbox):
        wait_for_lines(url, 420)
        yield url, inbox


@contextlib.contextmanager
def page_at(browser: Any, url: str, size: str) -> Iterator[tuple[Any, list[str]]]:
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(url)
        expect(page.locator("#processors tr").first).to_be_visible()
        yield page, problems
    finally:
        context.close()


def feed(page: Any, inbox: Path, rounds: int) -> None:
    """Lines arriving while the page polls, so that rates and charts have data."""
    for i in range(rounds):
        with (inbox / "app.log").open("a") as f:
            f.writelines(line + "\n" for line in sample_lines(200, 10_000 + 200 * i))
        page.wait_for_timeout(400)


def header_box(page: Any, panel: str, name: str) -> dict[str, float]:
    header = page.locator(f"#panel-{panel} thead th").filter(
        has_text=re.compile(rf"^\s*{re.escape(name)}\b", re.I)
    )
    expect(header.first).to_be_visible()
    box: dict[str, float] = header.first.bounding_box()
    return box


def assert_key_columns_on_screen(page: Any, width: int) -> None:
    for panel, names in KEY_COLUMNS.items():
        page.locator(f"#panel-{panel}").scroll_into_view_if_needed()
        expect(page.locator(f"#{panel} tr").first).to_be_visible()  # polled once on screen
        scroller = page.locator(f"#panel-{panel} .scroll").bounding_box()
        for name in names:
            box = header_box(page, panel, name)
            right = box["x"] + box["width"]
            assert right <= scroller["x"] + scroller["width"] + 1, (panel, name, box, scroller)
            assert right <= width, (panel, name, box)


@pytest.mark.parametrize("size", list(SIZES))
def test_key_columns_are_on_screen_and_nothing_overflows(
    browser: Any, daemon: tuple[str, Path], size: str
) -> None:
    url, inbox = daemon
    width, _ = SIZES[size]
    with page_at(browser, url, size) as (page, problems):
        feed(page, inbox, 3)
        assert_key_columns_on_screen(page, width)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.locator("#panel-chart").scroll_into_view_if_needed()
        buttons = [b.bounding_box() for b in page.locator("#range button").all()]
        assert len({round(b["y"]) for b in buttons}) == 1, "the range buttons stay on one line"
        assert max(b["x"] + b["width"] for b in buttons) <= width
    assert problems == []


@pytest.mark.parametrize("size", list(SIZES))
def test_axis_labels_never_overlap_and_read_distinct(
    browser: Any, daemon: tuple[str, Path], size: str
) -> None:
    url, inbox = daemon
    with page_at(browser, url, size) as (page, _):
        page.locator("#panel-chart").scroll_into_view_if_needed()
        feed(page, inbox, 3)
        for label in ("live", "1 h", "24 h", "7 d"):
            page.get_by_role("button", name=label, exact=True).click()
            page.wait_for_timeout(700)
            boxes = sorted(
                (b["x"], b["x"] + b["width"])
                for b in (t.bounding_box() for t in page.locator("#chart text.axis.time").all())
                if b is not None
            )
            assert len(boxes) >= 2, label
            for (_, end), (start, _) in itertools.pairwise(boxes):
                assert end <= start + 0.5, (label, boxes)
            values = page.locator("#chart-errors text.axis").all_text_contents()
            assert len(values) == len(set(values)), (label, values)


def test_ticks_are_round_and_distinct(browser: Any, daemon: tuple[str, Path]) -> None:
    url, _ = daemon
    with page_at(browser, url, "desktop") as (page, _):
        cases = page.evaluate(
            """() => [0, 0.003, 0.05, 0.1, 0.15, 0.2, 0.7, 3, 11, 99, 1234, 56789, 2.5e6]
              .flatMap((peak) => [2, 4].map((n) => {
                const t = window.InboxdChart.niceTicks(peak, n);
                const labels = t.values.map((v) => window.InboxdChart.fmtTick(v, t.step));
                return { peak, top: t.top, labels };
              }))"""
        )
    for case in cases:
        labels = case["labels"]
        assert len(labels) == len(set(labels)), case
        assert case["top"] >= case["peak"], case
        assert labels[0] == "0", case
    two = next(c for c in cases if c["peak"] == 0.15 and len(c["labels"]) <= 3)
    assert two["labels"] == ["0", "0.1", "0.2"]


def test_hovering_a_chart_shows_the_values(browser: Any, daemon: tuple[str, Path]) -> None:
    url, inbox = daemon
    with page_at(browser, url, "desktop") as (page, problems):
        feed(page, inbox, 4)
        expect(page.locator("#chart svg")).to_be_visible()
        # The container, not the SVG: the SVG is replaced at every redraw.
        box = page.locator("#chart").bounding_box()
        page.mouse.move(box["x"] + box["width"] - 30, box["y"] + 60)
        text = page.locator("#chart .hover-text")
        expect(text).to_contain_text("tag_router")
        expect(text).to_contain_text("/s")
        page.wait_for_timeout(1300)  # a redraw keeps the values under the pointer
        expect(page.locator("#chart .hover-text")).to_contain_text("tag_router")
        page.mouse.move(5, 5)
        expect(page.locator("#chart .hover-text")).to_have_count(0)
    assert problems == []


@pytest.mark.parametrize("size", list(SIZES))
def test_an_error_opens_to_its_attempt_and_traceback(
    browser: Any, daemon: tuple[str, Path], size: str
) -> None:
    url, _ = daemon
    with page_at(browser, url, size) as (page, problems):
        page.locator("#panel-errors").scroll_into_view_if_needed()
        row = page.locator("#errors tr.error-row").first
        expect(row).to_be_visible()
        row.click()
        detail = page.locator("#errors tr.error-detail").first
        expect(detail).to_be_visible()
        expect(detail).to_contain_text("ValueError: cannot parse")
        expect(detail.locator("pre.traceback")).to_contain_text("Traceback")
        expect(detail).to_contain_text("attempt")
        page.locator("#errors tr.error-row").first.click()
        expect(page.locator("#errors tr.error-detail")).to_have_count(0)
    assert problems == []


def test_screenshots(browser: Any, daemon: tuple[str, Path], tmp_path: Path) -> None:
    """Desktop and phone screenshots; into docs/ with INBOXD_SCREENSHOT_DIR=docs."""
    url, inbox = daemon
    folder = Path(os.environ.get("INBOXD_SCREENSHOT_DIR", str(tmp_path)))
    for size, name in (("desktop", "dashboard.png"), ("phone", "dashboard-phone.png")):
        with page_at(browser, url, size) as (page, _):
            feed(page, inbox, 6)
            page.locator("#errors tr.error-row").first.click()
            page.locator("#panel-chart").scroll_into_view_if_needed()
            expect(page.locator("#chart svg")).to_be_visible()
            chart = page.locator("#chart").bounding_box()
            page.mouse.move(chart["x"] + chart["width"] * 0.85, chart["y"] + 70)
            page.wait_for_timeout(300)
            page.screenshot(path=str(folder / name), full_page=size == "desktop")
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
