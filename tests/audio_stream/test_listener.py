"""The audio_stream listener (MEDIA_MGR_AUDIO_STREAM_PORT, picows) and the HTTP port's route serve the
same streams: fragmented messages are whole messages on both, a path outside ``/audio_stream`` is
refused with an HTTP answer, and an issued URL names the listener's port."""

from __future__ import annotations

import json

import pytest
from audio_stream_checks import assert_same_audio, issue_url, noise, recorded_pcm
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from servers import RunningServer

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("port", ["ws_port", "port"])
async def test_fragmented_messages_are_reassembled_on_either_port(server: RunningServer, port: str) -> None:
    """A voipbit start split in three fragments, binary audio frames split in two: the recording is the
    audio sent, sample for sample (a fragment taken for a message would be lost or misplaced)."""
    url, recording_id = await issue_url(server)
    url = url.replace(f":{server.ws_port}/", f":{getattr(server, port)}/") + "&rate=8000"
    audio = noise(0.5, 21)
    metadata = json.dumps({"callId": f"fragments-{port}"})
    async with connect(url, compression=None, ping_interval=None, open_timeout=10) as ws:
        await ws.send([metadata[:5], metadata[5:12], metadata[12:]])  # one text message, three frames
        for i in range(0, len(audio), 160):
            frame = audio[i : i + 160].tobytes()
            await ws.send([frame[:100], frame[100:]])  # one binary message, two frames
    got, rate = await recorded_pcm(server, recording_id)
    assert rate == 8000
    assert_same_audio(got[:, 0], audio, f"fragmented, on {port}")


async def test_a_path_outside_audio_stream_is_refused_by_the_listener(server: RunningServer) -> None:
    if server.ws_port == server.port:
        pytest.skip("no listener of its own (MEDIA_MGR_TEST_WS_LISTENER=http)")
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://127.0.0.1:{server.ws_port}/elsewhere", open_timeout=5):
            pass
    assert refused.value.response.status_code == 404


async def test_issued_urls_name_the_listener(server: RunningServer) -> None:
    url, _ = await issue_url(server)
    assert url.startswith(f"ws://127.0.0.1:{server.ws_port}/audio_stream?token=")
