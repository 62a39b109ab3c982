"""The console's fixtures: a real ``media-mgr serve`` on its own database, and the two browsers the
console must work in, both Debian's and both driven by Playwright (no browser download): chromium over
CDP (``executable_path``) and firefox-esr over WebDriver BiDi (``channel="moz-firefox"``, through
``firefox_bidi``). Every test that takes ``visit`` runs once in each. Screenshots go to one folder per
run and browser (``MEDIA_MGR_TEST_SCREENSHOTS`` to choose it), printed at the end so a person can look."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser_visit import Visit
from firefox_bidi import launch_firefox
from playwright.sync_api import Browser, ConsoleMessage, Playwright, Request, sync_playwright

from servers import RunningServer, start_server

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def console_server(
    new_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """No admin token (loopback is admin); a dropped audio_stream socket ends its call within 1 s."""
    data = tmp_path_factory.mktemp("console-server")
    srv = start_server(
        {"MEDIA_MGR_DATABASE_URL": new_database(), "MEDIA_MGR_DATA_DIR": str(data),
         "MEDIA_MGR_LIMIT_UPLOAD_BYTES": str(8 * 1024 * 1024), "MEDIA_MGR_TIMEOUT_WS_RECONNECT": "1"},
        data / "server.log",
    )  # fmt: skip
    yield srv
    srv.stop()


# Module scope, not session: Playwright's sync API runs its event loop in the main thread while it
# is open, so every async test collected after the console's would find a loop already running.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed (scripts/test installs it: apt-get install chromium)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module", params=["chromium", "firefox"])
def browser(
    request: pytest.FixtureRequest, playwright_driver: Playwright, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browser]:
    if request.param == "chromium":
        browser = playwright_driver.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--mute-audio"],
        )
    else:
        browser = launch_firefox(playwright_driver, tmp_path_factory.mktemp("firefox-bidi"))
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    chosen = os.environ.get("MEDIA_MGR_TEST_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("console-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    print(f"\nconsole screenshots: {folder}")


# Playwright's screenshotter appends ``<style>body {}</style>`` to settle animations; the page's
# ``style-src 'self'`` refuses it, and Firefox reports that as a page error (Chromium says nothing).
SCREENSHOT_STYLE = "sha256-" + base64.b64encode(hashlib.sha256(b"body {}").digest()).decode()


def expected_noise(text: str) -> bool:
    """Console errors that are not the page's: a refused API call (the page shows it) and the above."""
    return "status of 4" in text or SCREENSHOT_STYLE in text


@pytest.fixture
def visit(browser: Browser, screenshots: Path) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    folder = screenshots / browser.browser_type.name
    folder.mkdir(exist_ok=True)
    seen = Visit(page, folder)
    page.on("request", lambda r: seen.requests.append(r.url) if isinstance(r, Request) else None)
    page.on("pageerror", lambda e: seen.errors.append(str(e)) if not expected_noise(str(e)) else None)
    page.on("console", lambda m: seen.errors.append(m.text) if isinstance(m, ConsoleMessage) and m.type == "error"
            and not expected_noise(m.text) else None)  # fmt: skip
    yield seen
    context.close()
    assert seen.errors == [], f"script errors on the page: {seen.errors}"
