"""The binary dialect (amigniter's libwsc build, drachtio's mod_audio_fork) against the real server:
raw s16le frames, stereo with the caller left, a rate from the URL or a metadata frame that may come
after the first audio, compression offered or not."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
from audio_stream_checks import assert_same_audio, issue_url, recorded_pcm, recording
from audio_stream_client import BinaryModule
from websockets.asyncio.client import connect

from servers import RunningServer

pytestmark = pytest.mark.timeout(120)


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_stereo_keeps_the_caller_left_and_frames_before_the_metadata(
    server: RunningServer, compression: str | None
) -> None:
    url, recording_id = await issue_url(server)
    module = BinaryModule(
        f"{url}&rate=16000&channels=2",
        {"inbound": tone(2, 16000), "outbound": np.zeros(32000, dtype=np.int16)},
        rate=16000, metadata=json.dumps({"callId": "stereo"}), early_frames=3, compression=compression,
    )  # fmt: skip
    await module.run(1.0)
    got, rate = await recorded_pcm(server, recording_id)
    assert rate == 16000
    assert got.shape[1] == 2
    assert_same_audio(got[:, 0], module.expected("inbound"), "left: the caller")
    assert not got[:, 1].any()  # the tone went only left
    assert (await recording(server, recording_id))["state"] == "complete"


async def test_rate_from_metadata_that_comes_after_the_audio(server: RunningServer) -> None:
    url, recording_id = await issue_url(server)
    module = BinaryModule(url, {"inbound": tone(2, 24000, 300)}, rate=24000, early_frames=5,
                          metadata=json.dumps({"callId": "late-meta", "sampleRate": 24000}))  # fmt: skip
    await module.run(1.0, stop_text="stop: bye")
    got, rate = await recorded_pcm(server, recording_id)
    assert rate == 24000
    assert_same_audio(got[:, 0], module.expected("inbound"), "mono 24 kHz")


async def test_mod_audio_fork_subprotocol_is_echoed_and_an_empty_frame_ends_the_stream(
    server: RunningServer,
) -> None:
    url, recording_id = await issue_url(server)
    audio = tone(1, 8000, 700)
    async with connect(f"{url}&sampling=8k", subprotocols=["audio.drachtio.org"],  # type: ignore[list-item]
                       compression=None, open_timeout=5, ping_interval=None) as ws:  # fmt: skip
        assert ws.subprotocol == "audio.drachtio.org"
        await ws.send(json.dumps({"callId": "fork-call"}))  # mod_audio_fork: metadata first
        for i in range(0, len(audio), 160):
            await ws.send(audio[i : i + 160].tobytes())
        await ws.send(b"")  # its graceful end: a zero-length binary frame
    rec = await recording(server, recording_id)
    assert rec["state"] == "complete"
    got, rate = await recorded_pcm(server, recording_id)
    assert rate == 8000
    assert_same_audio(got[:, 0], audio, "fork")


async def test_no_rate_anywhere_falls_back_to_8_khz(server: RunningServer) -> None:
    url, recording_id = await issue_url(server)
    module = BinaryModule(url, {"inbound": tone(2, 8000, 500)}, rate=8000, metadata="just some text")
    await module.run(1.5)
    got, rate = await recorded_pcm(server, recording_id)
    assert rate == 8000
    assert_same_audio(got[:, 0], module.expected("inbound"), "defaulted mono 8 kHz")


@pytest.mark.parametrize("channels", [1, 2])
async def test_frames_cut_inside_a_sample_lose_and_shift_nothing(
    server: RunningServer, channels: int
) -> None:
    """A resampler may send a byte count that ends inside a sample frame: the split bytes wait for
    the next message, so every sample lands where it was sent."""
    url, recording_id = await issue_url(server)
    rng = np.random.default_rng(channels)
    audio = (rng.standard_normal((8000, channels)) * 4000).astype("<i2")
    data = audio.tobytes()
    sizes = [321, 319, 322, 318, 325, 315]  # odd, and not whole stereo frames; 1920 bytes a cycle
    async with connect(f"{url}&rate=8000&channels={channels}", compression=None, open_timeout=5,
                       ping_interval=None) as ws:  # fmt: skip
        loop = asyncio.get_running_loop()
        t0, at, i = loop.time(), 0, 0
        while at < len(data):  # paced on the clock: the media time sent so far, no drift
            size = sizes[i % len(sizes)] * channels
            await ws.send(data[at : at + size])
            at, i = at + size, i + 1
            await asyncio.sleep(max(0.0, t0 + at / (2 * channels * 8000) - loop.time()))
    got, rate = await recorded_pcm(server, recording_id)
    assert (rate, got.shape[1]) == (8000, channels)
    for ch in range(channels):
        assert_same_audio(got[:, ch], audio[:, ch], f"channel {ch}")


async def test_an_issued_url_carries_the_rate_and_channels_the_caller_gave(server: RunningServer) -> None:
    """amigniter's module waits for metadata unless its URL says the rate: with one issued that
    way, a stream that sends no metadata at all is recorded at once in the right format."""
    url, recording_id = await issue_url(server, rate=16000, channels=2)
    assert url.endswith("&rate=16000&channels=2")
    assert len(url.split(":", 2)[2].split("/", 1)[1]) < 127  # the module's path buffer
    module = BinaryModule(url, {"inbound": tone(1, 16000), "outbound": tone(1, 16000, 300)}, rate=16000)
    await module.run(1.0)
    got, rate = await recorded_pcm(server, recording_id)
    assert (rate, got.shape[1]) == (16000, 2)
    assert_same_audio(got[:, 0], module.expected("inbound"), "left")
    assert_same_audio(got[:, 1], module.expected("outbound"), "right")


@pytest.mark.parametrize("body", [{"rate": 11025}, {"rate": 96000}, {"channels": 3}])
async def test_an_impossible_rate_or_channel_count_is_refused(
    server: RunningServer, body: dict[str, int]
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        r = await http.post("/v1/audio-stream-urls", json=body)
    assert r.status_code == 422, r.text
