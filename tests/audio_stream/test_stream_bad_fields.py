"""A bad field in a frame is a bad frame, in both dialects: dropped and counted under the existing
limits (close 1007, URL refused a while), never an error of ours (1011 would not refuse the URL, so
voipbit would reconnect for ever), and the good audio around it is recorded sample for sample."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from audio_stream_checks import assert_same_audio, closed_with, issue_url, noise, recorded_pcm, recording
from audio_stream_client import BinaryModule, SendText, Talk, VoipbitModule
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from servers import RunningServer

pytestmark = pytest.mark.timeout(120)

PAYLOAD = base64.b64encode(bytes(320)).decode()
DEEP = "[" * 50_000


def media(**fields: object) -> str:
    """A voipbit ``media`` frame with some of its fields replaced."""
    body: dict[str, object] = {
        "track": "inbound",
        "timestamp": "1726398123456",
        "chunk": 1,
        "payload": PAYLOAD,
    }
    body.update(fields)
    return json.dumps({"sequenceNumber": 1, "stream_id": "bad-fields", "event": "media", "media": body})


BAD_MEDIA = [
    media(timestamp="²"),  # str.isdigit() says yes, int() says no
    media(timestamp="9" * 4301),  # int() refuses more than 4,300 digits
    media(timestamp=[1]),
    media(chunk=2**70),
    media(chunk=-3),
    media(chunk="7"),
    media(payload="not base64!"),
    media(track=["inbound"]),
    media(payload=12),
    json.dumps({"event": "media", "stream_id": "\ud800x", "media": json.loads(media())["media"]}),
    json.dumps({"event": "media", "stream_id": {"a": 1}, "media": json.loads(media())["media"]}),
    '{"event": "media", "media": {"payload": ' + DEEP + "}}",  # past the recursion limit: text
    DEEP,
]


async def test_bad_fields_of_media_frames_are_dropped_and_the_stream_goes_on(server: RunningServer) -> None:
    url, recording_id = await issue_url(server)
    module = VoipbitModule(url, {"inbound": noise(2, 11)}, stream_id="bad-fields")
    await module.start()
    await module.run(Talk(0.3), *(SendText(frame) for frame in BAD_MEDIA), Talk(0.3))
    await module.hangup()
    rec = await recording(server, recording_id)
    assert rec["state"] == "complete"
    got, _ = await recorded_pcm(server, recording_id)
    assert_same_audio(got[:, 0], module.expected("inbound"), "inbound")
    log = server.log()
    assert "audio_stream frame dropped" in log
    assert "internal error" not in log and "Traceback" not in log


async def test_more_bad_fields_than_the_limit_close_1007_and_refuse_the_url(server: RunningServer) -> None:
    url, recording_id = await issue_url(server)
    module = VoipbitModule(url, {"inbound": noise(2, 12)}, stream_id="bad-stamps")
    await module.start()
    await module.run(Talk(0.2))
    assert module.ws is not None
    try:
        for _ in range(60):  # MEDIA_MGR_LIMIT_WS_BAD_FRAMES is 50
            await module.ws.send(media(timestamp="²"))
    except ConnectionClosed:
        pass
    assert await closed_with(module) == 1007
    rec = await recording(server, recording_id)
    assert rec["state"] == "interrupted"
    with pytest.raises(InvalidStatus) as refused:  # voipbit would reconnect: it is told no
        await connect(url, subprotocols=["audio.freeswitch.org"], open_timeout=5)  # type: ignore[list-item]
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800x"], ids=["nul", "surrogate"])
async def test_a_bad_call_id_in_start_is_refused_as_bad_input(server: RunningServer, bad: str) -> None:
    """The call id names the recording: PostgreSQL cannot store either (it used to be a 1011)."""
    url, _ = await issue_url(server)
    async with connect(url, open_timeout=5, ping_interval=None) as ws:
        start = {"event": "start", "start": {"callId": bad, "stream_id": "s",
                 "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 8000}}}  # fmt: skip
        await ws.send(json.dumps(start))
        async with asyncio.timeout(5):
            await ws.wait_closed()
    assert ws.close_code == 1003
    assert "Traceback" not in server.log()


@pytest.mark.parametrize(
    "metadata",
    [
        '{"sampleRate": "²k", "callId": "c-1"}',
        json.dumps({"rate": "8" * 4301, "channels": "١"}),
        '{"callId": "\\ud800x", "mode": [1]}',
        DEEP,
    ],
    ids=["superscript-rate", "4301-digit-rate", "surrogate-call-id", "deep"],
)
async def test_binary_metadata_with_bad_fields_says_nothing_and_the_audio_is_recorded(
    server: RunningServer, metadata: str
) -> None:
    url, recording_id = await issue_url(server)
    module = BinaryModule(f"{url}&rate=8000", {"inbound": noise(0.6, 13)}, metadata=metadata)
    await module.run(0.6)
    got, rate = await recorded_pcm(server, recording_id)
    assert rate == 8000
    assert_same_audio(got[:, 0], module.expected("inbound"), "inbound")
    assert "Traceback" not in server.log()
