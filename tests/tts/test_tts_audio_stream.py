"""A tts:// name played into a live mod_audio_stream call: the same catalog path as media_req."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
from audio_stream_checks import session_of, ws_base
from audio_stream_client import Talk, VoipbitModule
from speech_audio import assert_speech, measure

from servers import RunningServer

pytestmark = pytest.mark.timeout(120)


async def test_tts_name_is_spoken_into_the_call(server: RunningServer) -> None:
    name = "tts://Welcome, your call is being recorded"
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        url = await http.post("/v1/stream-urls", json={"media_name": name})  # synthesised before the call
        silence = np.zeros(8000 * 30, dtype=np.int16)
        module = VoipbitModule(
            ws_base(server), {"inbound": silence}, stream_id="tts-call", bidirectional=True
        )
        await module.start()
        talking = asyncio.create_task(module.run(Talk(6.0)))  # the speech is about 2.3 s
        await session_of(server, "tts-call")
        r = await http.post("/v1/streams/tts-call/play", json={"media_name": name, "checkpoint": "said"})
        assert r.status_code == 202, r.text
    await talking
    await module.hangup()
    assert [ack for _, ack in module.acks if ack == "said"] == ["said"]
    assert url.json()["stream_url"].endswith(f"/{r.json()['media_id']}.wav")  # the same stored speech
    played = np.frombuffer(bytes(module.played), dtype="<i2")
    assert_speech(measure(np.trim_zeros(played), 8000), 1.5, 3.5)
