"""The media library page in a real browser against a real server: upload, list, play, replace, delete."""

from __future__ import annotations

import base64
import re
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from browser_visit import Visit
from playwright.sync_api import FileChooser, Locator, Page, expect

from servers import RunningServer
from sounds import tone

pytestmark = pytest.mark.slow  # a real browser against a real server: seconds per test

PLAYING = "() => { const a = document.getElementById('player'); return a.ended || a.currentTime > 0.3; }"


def drop_file(page: Page, path: Path, name: str | None = None, mime: str = "audio/wav") -> None:
    """What a drag and drop from the desktop delivers: a ``drop`` event carrying the file."""
    page.evaluate(
        """([name, b64, mime]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: mime }));
            const zone = document.getElementById("drop-zone");
            for (const type of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
            }
        }""",
        [name or path.name, base64.b64encode(path.read_bytes()).decode(), mime],
    )


def show_only(page: Page, text: str) -> None:
    page.fill("#library-filter [name=name]", text)
    page.press("#library-filter [name=name]", "Enter")


def row_of(page: Page, name: str) -> Locator:
    return page.locator("#media-table tbody tr", has_text=name)


def test_drop_upload_is_listed_plays_and_replace_bumps_the_revision(
    console_server: RunningServer, visit: Visit, tmp_path: Path
) -> None:
    page = visit.page
    name = f"drop-{secrets.token_hex(4)}.wav"
    wav = tone(tmp_path / "in.wav", seconds=1.5)
    page.goto(console_server.url + "/")
    assert urlsplit(page.url).path == "/console/"
    expect(page.locator("#media-caption")).to_contain_text("Media:")
    expect(page.locator("#player-bar")).to_be_hidden()  # until something plays

    drop_file(page, wav, name)
    expect(page.locator("#upload-log li.ok")).to_contain_text(f"{name}: stored as /system_media/")
    show_only(page, name)
    row = row_of(page, name)
    expect(row).to_have_count(1)
    expect(row.locator("td.revision")).to_have_text("1")
    expect(row).to_contain_text("8 kHz")
    expect(row).to_contain_text("0:01.5")
    wave = row.locator("img.wave")
    expect(wave).to_have_attribute("src", re.compile(r"^blob:"))
    assert wave.evaluate("img => img.complete && img.naturalWidth > 0")
    expect(wave).to_have_attribute("alt", f"waveform, {name}: peak -3.0 dBFS")  # the level, read from the SVG
    visit.shot("library-uploaded")

    row.get_by_role("button", name=f"Play {name}").click()
    page.wait_for_function(PLAYING)
    assert urlsplit(page.eval_on_selector("#player", "a => a.currentSrc")).path.startswith("/single/")
    expect(page.locator("#now-playing")).to_contain_text(name)
    expect(page.locator("#player-bar")).to_be_visible()
    media_id = row.get_attribute("data-id")
    with page.expect_download() as download:
        row.get_by_role("button", name=f"Download {name}").click()
    assert download.value.suggested_filename == name
    assert Path(download.value.path()).read_bytes() == wav.read_bytes()  # the stored bytes, as uploaded

    louder = tone(tmp_path / "louder.wav", seconds=0.5, rate=16000)
    row.get_by_role("button", name=f"Replace {name}").click()
    dialog = page.locator("#replace-dialog")
    expect(dialog).to_be_visible()
    visit.shot("library-replace-dialog")
    page.set_input_files("#replace-input", str(louder))
    dialog.get_by_role("button", name="Replace").click()
    expect(dialog).to_be_hidden()
    expect(row.locator("td.revision")).to_have_text("2")
    expect(row).to_contain_text("16 kHz")
    expect(page.locator("#library-status")).to_contain_text("now revision 2")
    expect(row.locator("img.wave")).to_have_attribute("data-revision", "2")
    record = httpx.get(f"{console_server.url}/v1/media/{media_id}").json()
    assert (record["revision"], record["sample_rate"]) == (2, 16000)
    visit.shot("library-replaced")


def test_a_refused_upload_shows_the_api_error_in_the_page(
    console_server: RunningServer, visit: Visit, tmp_path: Path
) -> None:
    page = visit.page
    page.goto(console_server.url + "/console/")
    text = tmp_path / "notes.wav"
    text.write_text("these are meeting notes, not audio\n" * 20)
    drop_file(page, text)
    refused = page.locator("#upload-log li.error")
    expect(refused).to_contain_text("notes.wav: refused, 415 unsupported_media_type")

    page.click(".upload-options summary")
    page.fill("#upload-options [name=account_id]", "not-an-account")
    drop_file(page, tone(tmp_path / "fine.wav", seconds=0.3))
    expect(page.locator("#upload-log li.error").first).to_contain_text(
        "fine.wav: refused, 400 invalid_request"
    )
    visit.shot("library-refused")


def test_delete_asks_for_confirmation_first(
    console_server: RunningServer, visit: Visit, tmp_path: Path
) -> None:
    name = f"doomed-{secrets.token_hex(4)}.wav"
    wav = tone(tmp_path / "d.wav", seconds=0.4)
    created = httpx.post(
        f"{console_server.url}/v1/media", files={"file": (name, wav.read_bytes())}, data={"name": name}
    )
    assert created.status_code == 201, created.text
    media_id = created.json()["id"]
    page = visit.page
    page.goto(console_server.url + "/console/")
    show_only(page, name)
    row = row_of(page, name)
    dialog = page.locator("#confirm-dialog")

    row.get_by_role("button", name=f"Delete {name}").click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Delete {name}?")
    visit.shot("library-confirm-delete")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(row).to_have_count(1)
    assert httpx.get(f"{console_server.url}/v1/media/{media_id}").status_code == 200

    row.get_by_role("button", name=f"Delete {name}").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    expect(page.locator("#library-status")).to_contain_text(f"Deleted {name}")
    assert httpx.get(f"{console_server.url}/v1/media/{media_id}").status_code == 404


def test_the_page_is_usable_from_the_keyboard(console_server: RunningServer, visit: Visit) -> None:
    page = visit.page
    choosers: list[FileChooser] = []
    page.on(
        "filechooser", lambda c: choosers.append(c)
    )  # early: Chromium intercepts choosers only once asked to
    page.goto(console_server.url + "/console/")
    expect(page.locator("#media-caption")).to_contain_text("Media:")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.name") == "name"

    page.focus("#tab-library")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#view-recordings")).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "tab-recordings"
    page.keyboard.press("End")
    expect(page.locator("#view-health")).to_be_visible()
    page.keyboard.press("Home")
    expect(page.locator("#view-library")).to_be_visible()

    page.focus("#library-filter [name=language]")
    for _ in range(3):  # Search, Clear, then the upload button
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "choose-files"
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement.id === 'choose-files'")
    deadline = time.monotonic() + 10
    while not choosers and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert len(choosers) == 1 and choosers[0].is_multiple()


def test_the_page_loads_nothing_from_elsewhere(console_server: RunningServer, visit: Visit) -> None:
    page = visit.page
    answer = httpx.get(f"{console_server.url}/console/")
    policy = answer.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy

    page.goto(console_server.url + "/console/")
    for tab in ("recordings", "live", "health", "library"):
        page.click(f"#tab-{tab}")
        expect(page.locator(f"#view-{tab}")).to_be_visible()
        page.wait_for_load_state("networkidle")
    origin = console_server.url
    elsewhere = [
        u for u in visit.requests if not (u.startswith(origin + "/") or u.startswith(("blob:", "data:")))
    ]
    assert visit.requests and elsewhere == []
