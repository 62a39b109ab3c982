"""voipbit/mod_audio_stream, simulated frame for frame, against the real server: what is stored is
exactly what was sent, on the call's clock (bursts in place, pauses and reconnects as silence)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from audio_stream_checks import (
    assert_same_audio,
    issue_url,
    recorded_pcm,
    recording,
    session_of,
    ws_base,
)
from audio_stream_client import (
    Pause,
    Reconnect,
    SendText,
    Stall,
    Talk,
    VoipbitModule,
    ulaw_decode,
    ulaw_encode,
)

from servers import RunningServer

pytestmark = pytest.mark.timeout(120)


def noise(seconds: float, rate: int, seed: int) -> np.ndarray:
    """Random audio: any misplaced sample shows."""
    return (np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 4000).astype(np.int16)


async def test_recording_is_the_audio_sent_placed_on_the_media_clock(server: RunningServer) -> None:
    url, recording_id = await issue_url(server, name="clock.wav")
    module = VoipbitModule(url, {"inbound": noise(12, 8000, 1)}, stream_id="clock")
    await module.start()
    await module.run(Talk(1.0), Pause(0.6), Talk(0.6), Stall(0.6), Talk(0.6))
    live = await session_of(server, "clock")
    await module.run(Reconnect(1.0), Talk(0.6), SendText("a send_text line"))
    after = await session_of(server, "clock")
    await module.graceful()

    got, rate = await recorded_pcm(server, recording_id)
    assert rate == 8000
    assert got.shape[1] == 1
    expected = module.expected("inbound")
    # pause and reconnect dropped audio: the recording keeps their length as silence
    assert_same_audio(got[:, 0], expected, "inbound")
    rec = await recording(server, recording_id)
    assert rec["state"] == "complete"
    assert rec["duration_ms"] == len(expected) * 1000 // 8000
    assert live["format"] == {"dialect": "voipbit", "encoding": "l16", "rate": 8000, "tracks": ["inbound"],
                              "channels": 1, "from": "start"}  # fmt: skip
    assert live["recording_id"] == recording_id
    assert live["gaps"] == 1 and after["gaps"] == 2  # the pause, then the reconnect
    assert after["reconnects"] == 1
    assert after["jitter_peak_ms"] > after["jitter_ms"]  # the burst after the stall
    assert live["preset"] == "low_latency" or live["jitter_held_ms"] > 3.75  # 8 kHz, one track
    assert 20 <= after["lead_ms"] <= 160  # a stall's burst is jitter too: the lead grew, within the presets


async def test_both_tracks_are_stored_as_stereo_inbound_left(server: RunningServer) -> None:
    url, recording_id = await issue_url(server)
    module = VoipbitModule(url, {"inbound": noise(3, 16000, 2), "outbound": noise(3, 16000, 3)}, rate=16000,
                           stream_id="both", metadata='{"campaign": "x"}')  # fmt: skip
    await module.start()
    await module.run(Talk(1.0), Stall(0.4), Talk(0.6))
    await module.hangup()  # close 1000 without stop: the common end

    got, rate = await recorded_pcm(server, recording_id)
    assert rate == 16000
    assert got.shape[1] == 2
    assert_same_audio(got[:, 0], module.expected("inbound"), "left (inbound)")
    assert_same_audio(got[:, 1], module.expected("outbound"), "right (outbound)")


@pytest.mark.parametrize("encoding", ["l16", "mulaw"])
async def test_every_rate_the_module_offers(server: RunningServer, encoding: str) -> None:
    rates = [8000, 16000, 24000, 32000, 48000] if encoding == "l16" else [8000]
    modules = []
    for i, rate in enumerate(rates):
        url, recording_id = await issue_url(server)
        modules.append((VoipbitModule(url, {"inbound": noise(1.5, rate, 10 + i)}, rate=rate, encoding=encoding,
                                      stream_id=f"rate-{encoding}-{rate}"), recording_id))  # fmt: skip

    async def call(module: VoipbitModule) -> None:
        await module.start()
        await module.run(Talk(1.0))
        await module.hangup()

    await asyncio.gather(*(call(m) for m, _ in modules))
    for module, recording_id in modules:
        got, rate = await recorded_pcm(server, recording_id)
        assert rate == module.rate
        expected = module.expected("inbound")
        if encoding == "mulaw":  # what mu-law can carry of it
            expected = ulaw_decode(ulaw_encode(expected))
        assert_same_audio(got[:, 0], expected, f"{encoding} {rate}")


async def test_a_reconnect_without_start_is_recorded_from_its_payloads(server: RunningServer) -> None:
    """A module that reconnects to an instance that never saw its start: format from the payload size."""
    module = VoipbitModule(ws_base(server) + "/moved?x=1", {"outbound": noise(2, 16000, 4)}, rate=16000,
                           stream_id="moved")  # fmt: skip
    module.chunks["outbound"] = 500  # the stream had been going on elsewhere
    await module.continue_without_start()
    await module.run(Talk(1.0))
    live = await session_of(server, "moved")
    await module.hangup()
    assert live["format"]["rate"] == 16000
    assert live["format"]["tracks"] == ["outbound"]
    assert live["format"]["from"] == "payload size"
    got, _ = await recorded_pcm(server, live["recording_id"])
    assert_same_audio(got[:, 0], module.expected("outbound"), "outbound")  # from its first chunk on
