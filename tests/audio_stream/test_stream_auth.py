"""Who may connect (INTERFACE.md "Issued URLs"), and the handshake the modules expect: the admin
token or an issued one, as ?token= or Basic auth; the subprotocol echoed when offered; the live
sessions' figures in /metrics (aggregates, no per-session series)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from audio_stream_checks import LOOP_LAG_TOLERATED, assert_same_audio, recorded_pcm, recording, streams
from audio_stream_client import Talk, VoipbitModule
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from servers import RunningServer, start_server

pytestmark = pytest.mark.timeout(120)
ADMIN = "s3cret-admin-token"


@pytest.fixture(scope="module")
def guarded(new_database: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("guarded")
    srv = start_server({"MEDIA_MGR_DATABASE_URL": new_database(), "MEDIA_MGR_DATA_DIR": str(data),  # type: ignore[operator]
                        "MEDIA_MGR_ADMIN_TOKEN": ADMIN, **LOOP_LAG_TOLERATED}, data / "server.log")  # fmt: skip
    yield srv
    srv.stop()


def base(srv: RunningServer) -> str:
    return f"ws://127.0.0.1:{srv.ws_port}/audio_stream/call"


async def status_of(url: str, **kwargs: object) -> int:
    try:
        async with connect(url, open_timeout=5, **kwargs):  # type: ignore[arg-type]
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_a_token_is_needed_when_an_admin_token_is_set(guarded: RunningServer) -> None:
    assert await status_of(base(guarded)) == 401
    assert await status_of(base(guarded) + "?token=wrong") == 403
    assert await status_of(base(guarded) + f"?token={ADMIN}") == 101
    basic = base64.b64encode(f"freeswitch:{ADMIN}".encode()).decode()
    assert await status_of(base(guarded), additional_headers=[("Authorization", f"Basic {basic}")]) == 101


async def test_an_issued_token_records_into_the_recording_it_names(guarded: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=guarded.url, headers={"authorization": f"Bearer {ADMIN}"}) as http:
        r = await http.post("/v1/audio-stream-urls", json={"name": "issued.wav"})
        assert r.status_code == 201, r.text
        issued = r.json()
    assert issued["url"].startswith(f"ws://127.0.0.1:{guarded.ws_port}/audio_stream?token=")
    assert len(issued["url"].split(":", 2)[2].split("/", 1)[1]) < 127  # the module's path buffer
    token = issued["url"].split("token=")[1]
    module = VoipbitModule(base(guarded), {"inbound": np.ones(8000, dtype=np.int16)},
                           basic_auth=("any-user", token))  # fmt: skip
    await module.start()
    await module.run(Talk(0.5))
    async with httpx.AsyncClient(base_url=guarded.url, headers={"authorization": f"Bearer {ADMIN}"}) as http:
        metrics = (await http.get("/metrics")).text
    await module.hangup()
    rec = await recording(guarded, issued["recording_id"], token=ADMIN)
    assert rec["name"] == "issued.wav"
    assert rec["state"] == "complete"
    assert re.search(r"^media_mgr_audio_stream_jitter_ms [0-9.]+$", metrics, re.M)  # one session: its own
    lead = re.search(r"^media_mgr_audio_stream_lead_ms ([0-9.]+)$", metrics, re.M)
    assert lead and 20 <= float(lead[1]) <= 160  # within the presets (jitter on a busy machine moves it)
    assert "media_mgr_audio_stream_sessions 1.0" in metrics


@pytest.mark.parametrize(("offered", "chosen"), [(["audio.freeswitch.org"], "audio.freeswitch.org"),
                                                  (["audio.drachtio.org"], "audio.drachtio.org"),
                                                  (["my.renamed.proto"], "my.renamed.proto"),
                                                  (None, None)])  # fmt: skip
async def test_the_subprotocol_is_echoed_when_offered(server: RunningServer, offered: list[str] | None,
                                                      chosen: str | None) -> None:  # fmt: skip
    async with connect(f"ws://127.0.0.1:{server.ws_port}/audio_stream/proto", subprotocols=offered,  # type: ignore[arg-type]
                       open_timeout=5) as ws:  # fmt: skip
        assert ws.subprotocol == chosen


async def test_loopback_needs_no_token_without_an_admin_token(server: RunningServer) -> None:
    call = f"loopback-{secrets.token_hex(4)}"
    audio = (np.random.default_rng(9).standard_normal(4000) * 3000).astype("<i2")
    async with connect(f"ws://127.0.0.1:{server.ws_port}/audio_stream?rate=8000", open_timeout=5,
                       compression=None, ping_interval=None) as ws:  # fmt: skip
        await ws.send(json.dumps({"callId": call}))
        for i in range(0, len(audio), 160):
            await ws.send(audio[i : i + 160].tobytes())
        for _ in range(100):  # the server may still be reading the frames on a busy machine
            if found := [s for s in await streams(server) if s["call_id"] == call and s["recording_id"]]:
                break
            await asyncio.sleep(0.05)
        assert len(found) == 1, found  # accepted, and recording
    got, rate = await recorded_pcm(server, found[0]["recording_id"])
    assert rate == 8000
    assert_same_audio(got[:, 0], audio, "a loopback stream without a token")
