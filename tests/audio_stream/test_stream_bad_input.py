"""Bad input never crashes the endpoint nor grows its memory: text that is no event is logged and
the stream goes on; what cannot go on gets a close code, a log line, and its URL refused a while."""

from __future__ import annotations

import asyncio
import base64
import json
import os

import pytest
from audio_stream_checks import assert_same_audio, closed_with, issue_url, noise, recorded_pcm, recording
from audio_stream_client import SendText, Talk, VoipbitModule
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from servers import RunningServer

pytestmark = pytest.mark.timeout(120)


async def test_text_that_is_no_event_is_logged_and_the_stream_goes_on(server: RunningServer) -> None:
    url, recording_id = await issue_url(server)
    module = VoipbitModule(url, {"inbound": noise(3, 1)}, stream_id="chatty")
    await module.start()
    await module.run(Talk(0.4), SendText("this is not JSON {"), Talk(0.2), SendText('{"event": "bogus"}'),
                     SendText('{"no": "event"}'), SendText("[1, 2]"), Talk(0.4))  # fmt: skip
    await module.hangup()
    got, _ = await recorded_pcm(server, recording_id)
    assert_same_audio(got[:, 0], module.expected("inbound"), "inbound")
    assert "audio_stream message ignored" in server.log()


async def test_binary_garbage_on_a_json_stream_closes_it_and_refuses_its_url(server: RunningServer) -> None:
    url, recording_id = await issue_url(server)
    module = VoipbitModule(url, {"inbound": noise(2, 2)}, stream_id="garbage")
    await module.start()
    await module.run(Talk(0.3))
    assert module.ws is not None
    try:
        for _ in range(80):
            await module.ws.send(os.urandom(320))
    except ConnectionClosed:
        pass
    assert await closed_with(module) == 1007
    assert "audio_stream closing on bad input" in server.log()
    rec = await recording(server, recording_id)
    assert rec["state"] == "interrupted"  # what came before the garbage is kept
    with pytest.raises(InvalidStatus) as refused:  # voipbit would reconnect: it is told no
        await connect(url, subprotocols=["audio.freeswitch.org"], open_timeout=5)  # type: ignore[list-item]
    assert refused.value.response.status_code == 403


async def test_an_oversize_message_is_closed_with_1009(server: RunningServer) -> None:
    url, _ = await issue_url(server)
    async with connect(url, max_size=None, open_timeout=5, ping_interval=None) as ws:
        await ws.send(json.dumps({"event": "media", "media": {"payload": "A" * (300 * 1024)}}))
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(5):
                await ws.recv()
    assert ws.close_code == 1009


def flood_messages(dialect: str) -> list[str | bytes]:
    """10 s of audio as one dialect's module would send it, to be sent as fast as the socket takes it."""
    pcm = noise(0.02, 4).tobytes()
    if dialect == "binary":
        return [pcm] * 500
    start = {"event": "start", "start": {"callId": "c", "stream_id": "flood", "tracks": ["inbound"],
                                         "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 8000}}}  # fmt: skip
    payload = base64.b64encode(pcm).decode()
    media = [
        json.dumps({"sequenceNumber": chunk, "stream_id": "flood", "event": "media",
                    "media": {"track": "inbound", "timestamp": str(chunk * 20), "chunk": chunk, "payload": payload}})
        for chunk in range(1, 500)
    ]  # fmt: skip
    return [json.dumps(start), *media]


@pytest.mark.parametrize("dialect", ["voipbit", "binary"])
async def test_a_flood_faster_than_real_time_is_closed_with_1008(server: RunningServer, dialect: str) -> None:
    url, recording_id = await issue_url(server)
    async with connect(f"{url}&rate=8000", open_timeout=5, ping_interval=None, compression=None) as ws:
        try:
            for message in flood_messages(dialect):
                await ws.send(message)
        except ConnectionClosed:
            pass
        async with asyncio.timeout(5):
            await ws.wait_closed()
    assert ws.close_code == 1008
    assert "ahead of real time" in server.log()
    rec = await recording(server, recording_id)
    assert rec["state"] == "interrupted"
    assert rec["duration_ms"] <= 2500  # the flood stopped at the allowance, it was not all stored
