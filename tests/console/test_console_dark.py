"""The dark colour scheme in firefox-esr, told by its content preference at launch: its BiDi has no
media emulation yet (see ``firefox_bidi``). Chromium's is emulated in ``test_console_paging``."""

from __future__ import annotations

from pathlib import Path

import pytest
from firefox_bidi import launch_firefox
from playwright.sync_api import Page, Playwright, expect

from servers import RunningServer

pytestmark = pytest.mark.slow  # a real browser against a real server: seconds per test

DARK_BACKGROUND = "rgb(18, 22, 28)"  # console.css: --bg in the dark scheme


def background(page: Page) -> str:
    value: str = page.evaluate("getComputedStyle(document.body).backgroundColor")
    return value


def test_firefox_follows_a_dark_content_preference(
    console_server: RunningServer, playwright_driver: Playwright, screenshots: Path, tmp_path: Path
) -> None:
    dark = launch_firefox(
        playwright_driver, tmp_path, {"layout.css.prefers-color-scheme.content-override": 0}
    )
    try:
        page = dark.new_page(viewport={"width": 1400, "height": 900})
        page.goto(console_server.url + "/console/#health")
        expect(page.locator("#health-cards .card", has_text="Database")).to_contain_text("reachable")
        assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
        assert background(page) == DARK_BACKGROUND
        (screenshots / "firefox").mkdir(exist_ok=True)
        page.screenshot(path=str(screenshots / "firefox" / "health-dark.png"), full_page=True)
    finally:
        dark.close()
