"""Stopping the server ends every audio stream properly, whichever the dialect: the audio received
up to the stop is in the recording, which is closed as interrupted by the shutdown, and a
``stopped`` event goes out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from audio_stream_checks import LOOP_LAG_TOLERATED, assert_same_audio, issue_url, recorded_pcm, recording
from audio_stream_client import Talk, VoipbitModule
from websockets.asyncio.client import connect

from event_listener import event_listener
from servers import start_server

pytestmark = pytest.mark.timeout(120)
AUDIO = (np.random.default_rng(3).standard_normal(8000 * 10) * 3000).astype("<i2")


@contextlib.asynccontextmanager
async def streaming(dialect: str, url: str, seconds: float) -> AsyncIterator[np.ndarray]:
    """A module that has sent ``seconds`` of audio and is still connected; yields what it sent."""
    if dialect == "voipbit":
        module = VoipbitModule(url, {"inbound": AUDIO}, stream_id="stopping")
        await module.start()
        await module.run(Talk(seconds))
        yield module.expected("inbound")
        return
    async with connect(f"{url}&rate=8000", compression=None, open_timeout=5, ping_interval=None) as ws:
        loop = asyncio.get_running_loop()
        t0, n = loop.time(), int(seconds * 8000)
        for i in range(0, n, 160):  # 20 ms frames, paced on the clock
            await ws.send(AUDIO[i : i + 160].tobytes())
            await asyncio.sleep(max(0.0, t0 + (i + 160) / 8000 - loop.time()))
        yield AUDIO[:n]


@pytest.mark.parametrize("dialect", ["voipbit", "binary"])
async def test_a_server_stop_flushes_closes_and_announces_every_session(
    new_database: Callable[[], str], tmp_path: Path, dialect: str
) -> None:
    async with event_listener("audio_stream.#") as events:
        env = {"MEDIA_MGR_DATABASE_URL": new_database(), "MEDIA_MGR_DATA_DIR": str(tmp_path / "d"),
               **LOOP_LAG_TOLERATED}  # fmt: skip
        first = start_server({**env, **events.env}, tmp_path / "first.log")
        try:
            async with httpx.AsyncClient(base_url=first.url, timeout=30) as http:
                while (await http.get("/readyz")).status_code != 200:  # the broker side is up
                    await asyncio.sleep(0.1)
            url, recording_id = await issue_url(first)
            async with streaming(dialect, url, 2.0) as sent:
                await asyncio.to_thread(first.stop)  # SIGTERM while the module is still connected
        finally:
            first.stop()
        seen: list[tuple[str, dict[str, Any]]] = []
        while not any(key == "audio_stream.stopped" for key, _ in seen):
            seen.append(await events.next(timeout=5))
    stopped = seen[-1][1]
    assert (stopped["Recording-ID"], stopped["Dialect"], stopped["Reason"]) == (
        recording_id,
        dialect,
        "shutdown",
    )
    assert stopped["Duration-MS"] == 2000
    second = start_server(env, tmp_path / "second.log")  # reads what the first one left
    try:
        rec = await recording(second, recording_id)
        assert (rec["state"], rec["end_reason"]) == ("interrupted", "shutdown")
        got, rate = await recorded_pcm(second, recording_id)
        assert rate == 8000
        assert_same_audio(got[:, 0], sent, "every sample received before the stop")
    finally:
        second.stop()
