"""10,000 items: the page asks for one page at a time and pages through them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from browser_visit import Visit, run_async
from playwright.sync_api import Request, expect

from servers import RunningServer, start_server
from sounds import tone

pytestmark = pytest.mark.slow  # a real browser against a real server: seconds per test

ITEMS = 10_000


@pytest.fixture(scope="module")
def big_library(
    new_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One real upload, then 9,999 more records sharing its content, written straight into the database."""
    dsn = new_database()
    data = tmp_path_factory.mktemp("console-big")
    srv = start_server({"MEDIA_MGR_DATABASE_URL": dsn, "MEDIA_MGR_DATA_DIR": str(data)}, data / "server.log")
    wav = tone(data / "seed.wav", seconds=0.5)
    seed = httpx.post(f"{srv.url}/v1/media", files={"file": ("item-00000.wav", wav.read_bytes())}).json()

    async def copies() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                """INSERT INTO media (id, account_id, prompt_id, language, name, content_type, codec, size,
                                      duration_ms, sample_rate, channels, sha256, revision, blob_id, created_at)
                   SELECT md5('console' || n), account_id, NULL, NULL, 'item-' || lpad(n::text, 5, '0') || '.wav',
                          content_type, codec, size, duration_ms, sample_rate, channels, sha256, 1, blob_id,
                          created_at + n * interval '1 ms'
                   FROM media, generate_series(1, $2) AS n WHERE id = $1""",
                seed["id"], ITEMS - 1,
            )  # fmt: skip
        finally:
            await conn.close()

    run_async(copies())
    yield srv
    srv.stop()


def test_ten_thousand_items_are_paged_not_loaded(
    big_library: RunningServer, visit: Visit, tmp_path: Path
) -> None:
    page = visit.page
    asked: list[str] = []
    page.on(
        "request", lambda r: asked.append(r.url) if isinstance(r, Request) and "/v1/media?" in r.url else None
    )
    page.goto(big_library.url + "/console/")
    expect(page.locator("#media-caption")).to_have_text("Media: 10,000 items")
    expect(page.locator("#media-table tbody tr")).to_have_count(50)
    expect(page.locator("#media-pager .range")).to_have_text("1–50 of 10,000")
    assert asked == [f"{big_library.url}/v1/media?limit=50&offset=0"]
    painted, listed = page.evaluate(
        """() => [performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1,
                  performance.getEntriesByName('media-listed')[0]?.startTime ?? -1].map(Math.round)"""
    )
    print(f"\nwith {ITEMS} items: first contentful paint {painted} ms, first page listed {listed} ms")
    visit.shot("library-10000")
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    # firefox-esr has no BiDi command for it yet (firefox_bidi answers it with no effect)
    assert dark or visit.browser == "firefox"
    if dark:
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(18, 22, 28)"
        visit.shot("library-10000-dark")
    page.emulate_media(color_scheme="light")

    page.click("#media-pager [data-page=next]")
    expect(page.locator("#media-pager .range")).to_have_text("51–100 of 10,000")
    expect(page.locator("#media-table tbody tr").first).to_contain_text("item-00050.wav")

    page.fill("#library-filter [name=name]", "item-0999")
    expect(page.locator("#media-pager .range")).to_have_text("1–10 of 10")
    assert page.locator("#media-pager [data-page=next]").is_disabled()
