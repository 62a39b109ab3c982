"""The live, recordings and health pages against a simulated mod_audio_stream call on a real server."""

from __future__ import annotations

import asyncio
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from audio_stream_client import Talk, VoipbitModule
from browser_visit import Visit
from playwright.sync_api import expect

from servers import RunningServer
from sounds import raw_mp3, tone

pytestmark = pytest.mark.slow  # a real browser against a real server: seconds per test

PLAYING = "() => { const a = document.getElementById('player'); return a.ended || a.currentTime > 0.3; }"


class CallThread:
    """A voipbit module talking in its own thread and event loop until told to hang up abruptly."""

    def __init__(self, module: VoipbitModule) -> None:
        self.module = module
        self.stop = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="simulated call", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._call())
        except BaseException as exc:  # reported by the test
            self.failure = exc

    async def _call(self) -> None:
        await self.module.start()
        while not self.stop.is_set():
            await self.module.run(Talk(0.2))
        await self.module._drop()  # a lost TCP connection: the server waits, then interrupts

    def wait_for(self, what: str, check: object, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not (check() if callable(check) else check):
            assert self.failure is None, f"the simulated call failed: {self.failure!r}"
            assert time.monotonic() < deadline, f"the module never saw {what}"
            time.sleep(0.05)


@pytest.fixture
def call(console_server: RunningServer) -> Iterator[CallThread]:
    audio = (np.sin(np.arange(8000 * 60) * 2 * np.pi * 300 / 8000) * 8000).astype(np.int16)
    module = VoipbitModule(f"ws://127.0.0.1:{console_server.port}/audio_stream", {"inbound": audio},
                           stream_id=f"console-{secrets.token_hex(3)}", bidirectional=True)  # fmt: skip
    running = CallThread(module)
    running.thread.start()
    yield running
    running.stop.set()
    running.thread.join(15)


def test_live_session_shows_plays_an_item_clears_and_its_cut_recording_is_flagged(
    console_server: RunningServer, visit: Visit, call: CallThread, tmp_path: Path
) -> None:
    prompt = tone(tmp_path / "prompt.wav", seconds=3.0)
    created = httpx.post(f"{console_server.url}/v1/media", files={"file": ("barge.wav", prompt.read_bytes())})
    assert created.status_code == 201, created.text
    media_id = created.json()["id"]
    page = visit.page
    page.goto(console_server.url + "/console/#live")

    card = page.locator(".card.session", has_text=call.module.stream_id)
    expect(card).to_be_visible(timeout=15_000)
    expect(card).to_contain_text("voipbit (l16)")
    expect(card).to_contain_text("8 kHz")
    expect(card.locator("svg.live-chart polyline.jitter")).to_have_count(1)
    session_id = card.get_attribute("data-session-id")

    card.get_by_label("Media to play into the call").fill(media_id)
    card.get_by_role("button", name="Play into call").click()
    expect(card).to_contain_text(f"Queued {media_id}")
    call.wait_for("media.play", lambda: call.module.plays > 0)
    expect(card).to_contain_text("playing")
    page.wait_for_function(  # the chart has gathered a few seconds
        "() => document.querySelector('.card.session polyline.jitter').getAttribute('points').split(' ').length >= 4"
    )
    visit.shot("live-session-playing")

    card.get_by_role("button", name="Clear (barge-in)").click()
    expect(card).to_contain_text("Cleared: playback stopped.")
    call.wait_for("media.clear", lambda: bool(call.module.cleared_at))
    detail = httpx.get(f"{console_server.url}/v1/streams/{session_id}").json()
    assert detail["playout"]["queued"] == 0

    recording_id = detail["recording_id"]
    call.stop.set()  # the socket drops without a close: after the reconnect wait, the recording is cut
    expect(card).to_have_count(0, timeout=15_000)
    page.click("#tab-recordings")
    row = page.locator(f"#recordings-table tbody tr[data-id='{recording_id}']")
    expect(row).to_have_attribute("data-state", "interrupted", timeout=15_000)
    expect(row.locator(".badge.interrupted")).to_have_text("interrupted · disconnected")
    expect(row).to_contain_text("audio_stream")
    expect(page.locator("#recordings-table tbody tr").first).to_have_attribute(
        "data-id", recording_id
    )  # newest first
    visit.shot("recordings-interrupted")

    row.get_by_role("button", name="Play").click()
    page.wait_for_function(PLAYING)
    with page.expect_download() as download:
        row.get_by_role("button", name="Download").click()
    stored = httpx.get(f"{console_server.url}/v1/recordings/{recording_id}/content").content
    assert Path(download.value.path()).read_bytes() == stored


def test_recording_url_dialog_gives_the_dialplan_lines(console_server: RunningServer, visit: Visit) -> None:
    page = visit.page
    page.goto(console_server.url + "/console/#recordings")
    name = f"console-rec-{secrets.token_hex(3)}"
    page.click("#new-recording")
    dialog = page.locator("#url-dialog")
    dialog.locator("[name=name]").fill(name)
    page.click("#url-issue")
    snippets = dialog.locator(".snippet pre")
    expect(snippets).to_have_count(2)
    shout = snippets.nth(0).inner_text()
    assert '<action application="set" data="enable_file_write_buffering=false"/>' in shout
    assert (
        f":{console_server.port}" not in shout.split("shout://", 1)[1].split("/", 1)[0]
    )  # the SHOUT port, not HTTP
    assert "/store/" in snippets.nth(1).inner_text()
    visit.shot("recordings-url-dialog")
    listed = httpx.get(
        f"{console_server.url}/v1/recordings", params={"state": "pending", "limit": 500}
    ).json()
    assert name in [r["name"] for r in listed["items"]]


def test_health_page_shows_database_broker_and_version(
    console_server: RunningServer, visit: Visit, tmp_path: Path
) -> None:
    wav = tone(tmp_path / "counted.wav", seconds=0.2)  # so that the upload counters exist
    assert httpx.post(
        f"{console_server.url}/v1/media", files={"file": ("c.wav", wav.read_bytes())}
    ).is_success
    page = visit.page
    page.goto(console_server.url + "/console/#health")
    cards = page.locator("#health-cards")
    expect(cards.locator(".card", has_text="Database")).to_contain_text("reachable")
    expect(cards.locator(".card", has_text="Broker")).to_contain_text("off")
    expect(cards.locator(".card", has_text="Version")).to_contain_text("0.1.0")
    expect(page.locator("#metrics-table tbody tr").first).to_be_visible()
    page.fill("#metric-filter", "media_mgr_uploads")
    expect(page.locator("#metrics-table tbody tr").first).to_contain_text("media_mgr_uploads")
    visit.shot("health")


@pytest.mark.parametrize("rate", [8000, 16000])
def test_a_shout_recording_in_progress_is_heard_live_from_its_mount(
    console_server: RunningServer, visit: Visit, tmp_path: Path, rate: int
) -> None:
    """mod_shout's 8 kHz MPEG-2.5 as well as 16 kHz: the browser plays the live mount on the SHOUT port."""
    raw_mp3(tmp_path / "live.mp3", rate=rate, seconds=40.0)
    rec = httpx.post(f"{console_server.url}/v1/recordings", json={"name": f"live-{rate}"}).json()
    source = subprocess.Popen(["ffmpeg", "-v", "error", "-re", "-i", str(tmp_path / "live.mp3"), "-c:a", "copy",
                               "-content_type", "audio/mpeg", "-f", "mp3",
                               rec["shout_url"].replace("shout://", "icecast://")])  # fmt: skip
    try:
        page = visit.page
        page.goto(console_server.url + "/console/#recordings")
        row = page.locator(f"#recordings-table tbody tr[data-id='{rec['id']}']")
        expect(row).to_have_attribute("data-state", "recording", timeout=15_000)  # the list is read again
        expect(row.locator(".badge.recording")).to_be_visible()
        row.get_by_role("button", name=f"Listen live to live-{rate}").click()
        page.wait_for_function(PLAYING)
        src = page.eval_on_selector("#player", "a => a.currentSrc")
        assert src.endswith(f"/{rec['id']}.mp3") and f":{console_server.port}/" not in src

        page.click("#tab-live")
        source_row = page.locator("#sources tbody tr", has_text=rec["id"])
        expect(source_row).to_be_visible()
        expect(source_row.locator("td").nth(3)).not_to_have_text("0")  # the page's own listener
        visit.shot(f"live-shout-source-{rate}")
    finally:
        source.terminate()
        source.wait(10)


def test_a_playback_download_in_flight_is_listed(
    console_server: RunningServer, visit: Visit, tmp_path: Path
) -> None:
    big = tone(tmp_path / "big.wav", rate=48000, seconds=80.0)  # 7.7 MB: more than the socket buffers hold
    item = httpx.post(f"{console_server.url}/v1/media", files={"file": ("big.wav", big.read_bytes())}).json()
    url = httpx.post(f"{console_server.url}/v1/stream-urls", json={"media_name": item["media_name"]}).json()
    with socket.socket() as slow:  # a client with a small window that read a little, then stalls
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", console_server.port))
        slow.sendall(f"GET {urlsplit(url['stream_url']).path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        assert slow.recv(1024).startswith(b"HTTP/1.1 200")
        page = visit.page
        page.goto(console_server.url + "/console/#live")
        row = page.locator("#downloads tbody tr", has_text=item["id"])
        expect(row).to_be_visible()
        expect(row).to_contain_text("wav")
        visit.shot("live-download-in-flight")
    expect(row).to_have_count(0)  # gone once the client went


def test_a_relay_that_cannot_reach_its_icecast_shows_why(
    console_server: RunningServer, visit: Visit, tmp_path: Path
) -> None:
    wav = tone(tmp_path / "moh.wav", seconds=1.0)
    item = httpx.post(f"{console_server.url}/v1/media", files={"file": ("moh.wav", wav.read_bytes())}).json()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    relay = httpx.post(f"{console_server.url}/v1/relays", json={
        "media_id": item["id"], "target": {"host": "127.0.0.1", "port": closed, "mount": "/moh.mp3", "password": "x"},
    })  # fmt: skip
    assert relay.status_code == 201, relay.text
    try:
        page = visit.page
        page.goto(console_server.url + "/console/#live")
        row = page.locator("#relays tbody tr", has_text=f"127.0.0.1:{closed}/moh.mp3")
        expect(row).to_contain_text(f"{item['id']} (loop)")
        expect(row.locator(".badge")).to_have_text("backoff", timeout=15_000)
        expect(row.locator("td").last).not_to_have_text("–")  # the last error, as the relay saw it
        visit.shot("live-relay-backoff")
    finally:
        httpx.delete(f"{console_server.url}/v1/relays/{relay.json()['id']}")
