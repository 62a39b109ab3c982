"""With an admin token configured: the page asks once, keeps it for the session, sends it only as a header."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from browser_visit import Visit
from playwright.sync_api import Request, expect

from servers import RunningServer, start_server
from sounds import tone

pytestmark = pytest.mark.slow  # a real browser against a real server: seconds per test

TOKEN = "console-" + secrets.token_urlsafe(18)


@pytest.fixture(scope="module")
def guarded(
    new_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("console-guarded")
    srv = start_server({"MEDIA_MGR_DATABASE_URL": new_database(), "MEDIA_MGR_DATA_DIR": str(data),
                        "MEDIA_MGR_ADMIN_TOKEN": TOKEN}, data / "server.log")  # fmt: skip
    yield srv
    srv.stop()


def test_the_token_is_asked_once_kept_for_the_session_and_only_sent_as_a_header(
    guarded: RunningServer, visit: Visit, tmp_path: Path
) -> None:
    wav = tone(tmp_path / "t.wav", seconds=0.5)
    name = f"guarded-{secrets.token_hex(3)}.wav"  # the server is shared by both browsers' runs
    created = httpx.post(f"{guarded.url}/v1/media", files={"file": (name, wav.read_bytes())},
                         headers={"authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert created.status_code == 201, created.text
    page = visit.page
    authorizations: list[str | None] = []
    page.on("request", lambda r: authorizations.append(r.headers.get("authorization")) if isinstance(r, Request)
            and "/v1/" in r.url else None)  # fmt: skip

    page.goto(guarded.url + "/console/")
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("The server asks for the admin token.")
    visit.shot("auth-token-dialog")
    page.fill("#token-input", TOKEN)
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    row = page.locator("#media-table tbody tr", has_text=name)
    expect(row).to_have_count(1)
    expect(row.locator("img.wave")).to_have_attribute("src", re.compile(r"^blob:"))
    expect(page.locator("#auth-state")).to_have_text("token set")
    assert page.evaluate("sessionStorage.getItem('media-mgr.admin-token')") == TOKEN
    assert page.evaluate("localStorage.length") == 0

    page.reload()  # same browser session: no second question
    expect(row).to_have_count(1)
    expect(dialog).to_be_hidden()

    assert f"Bearer {TOKEN}" in authorizations
    assert all(TOKEN not in url for url in visit.requests)
    assert TOKEN not in guarded.log()

    page.click("#sign-out")
    assert page.evaluate("sessionStorage.getItem('media-mgr.admin-token')") is None
    expect(dialog).to_be_visible()  # the next call is refused, so it asks again
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.click("#tab-live")  # polled every second: refused every second, but not asked again
    expect(page.locator("#live-status")).to_contain_text("401 unauthorized")
    for _ in range(2):  # two more refused polls
        with page.expect_response(lambda r: r.url.endswith("/v1/streams") and r.status == 401):
            pass
    expect(dialog).to_be_hidden()
    page.click("#sign-in")  # until asked for
    expect(dialog).to_be_visible()
    # the 401s the page met while signed out are expected; they are not script errors
    visit.errors.clear()


def test_the_waveform_is_guarded_like_the_rest_of_v1(guarded: RunningServer, tmp_path: Path) -> None:
    wav = tone(tmp_path / "w.wav", seconds=0.3)
    bearer = {"authorization": f"Bearer {TOKEN}"}
    media_id = httpx.post(
        f"{guarded.url}/v1/media", files={"file": ("w.wav", wav.read_bytes())}, headers=bearer
    ).json()["id"]
    url = f"{guarded.url}/v1/media/{media_id}/waveform.svg"
    refused = httpx.get(url)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert httpx.get(url, headers={"authorization": "Bearer wrong"}).status_code == 401
    answer = httpx.get(url, headers=bearer)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/svg+xml"
    # the page itself and its config are public: they hold no data
    assert httpx.get(f"{guarded.url}/console/").status_code == 200
    assert httpx.get(f"{guarded.url}/console/config.json").json()["shout_port"] > 0
