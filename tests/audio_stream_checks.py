"""What the audio_stream tests ask the real server: URLs, sessions, and the stored recording."""

from __future__ import annotations

import asyncio
import io
import wave
from typing import Any

import httpx
import numpy as np
from audio_stream_client import VoipbitModule

from servers import RunningServer

# For servers a test starts itself when it is not about overload: a test machine shared with other
# work runs their event loop late now and then, and MEDIA_MGR_LIMIT_WS_LOOP_LAG_MS would then answer
# an upgrade 503 (bench/audio_stream_load.py is where that limit is measured).
LOOP_LAG_TOLERATED = {"MEDIA_MGR_LIMIT_WS_LOOP_LAG_MS": "60000"}


def ws_base(server: RunningServer) -> str:
    return f"ws://127.0.0.1:{server.ws_port}/audio_stream"


async def issue_url(server: RunningServer, **body: Any) -> tuple[str, str]:
    """``POST /v1/audio-stream-urls``: the module's URL and the recording its token names."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        r = await http.post("/v1/audio-stream-urls", json=body)
    assert r.status_code == 201, r.text
    return r.json()["url"], r.json()["recording_id"]


async def streams(server: RunningServer) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        r = await http.get("/v1/streams")
    assert r.status_code == 200, r.text
    return [s for s in r.json()["streams"] if s["kind"] == "audio_stream"]


async def session_of(server: RunningServer, stream_id: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [s for s in await streams(server) if s["stream_id"] == stream_id and s["state"] != "ended"]
        if found:
            return found[0]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no live session for stream {stream_id}")
        await asyncio.sleep(0.05)


async def recording(
    server: RunningServer, recording_id: str, timeout: float = 15.0, token: str | None = None
) -> dict[str, Any]:
    """The recording once it is closed (``complete`` or ``interrupted``)."""
    deadline = asyncio.get_running_loop().time() + timeout
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server.url, timeout=10, headers=headers) as http:
        while True:
            r = await http.get(f"/v1/recordings/{recording_id}")
            if r.status_code == 200 and r.json()["state"] in ("complete", "interrupted"):
                return r.json()  # type: ignore[no-any-return]
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"recording {recording_id} did not close: {r.status_code} {r.text}")
            await asyncio.sleep(0.1)


async def recorded_pcm(server: RunningServer, recording_id: str) -> tuple[np.ndarray, int]:
    """The stored WAV decoded: samples shaped (frames, channels), and the rate."""
    await recording(server, recording_id)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        r = await http.get(f"/v1/media/{recording_id}/content")
    assert r.status_code == 200, r.text
    with wave.open(io.BytesIO(r.content)) as w:
        assert w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data.reshape(-1, w.getnchannels()), w.getframerate()


def assert_same_audio(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Sample for sample, with the first difference named when there is one."""
    assert len(got) == len(expected), f"{what}: {len(got)} samples recorded, {len(expected)} sent"
    diff = np.nonzero(got != expected)[0]
    assert not len(diff), (
        f"{what}: {len(diff)} samples differ, first at {diff[0]} ({diff[0] / 8:.0f} ms at 8 kHz)"
    )


async def latest_recording(server: RunningServer, stream_id: str, timeout: float = 5.0) -> str:
    """The recording id of the most recent session with this stream id (from the session list)."""
    return str((await session_of(server, stream_id, timeout))["recording_id"])


def noise(seconds: float, seed: int) -> np.ndarray:
    """8 kHz of seeded noise: misplaced or lost audio never matches by chance."""
    return (np.random.default_rng(seed).standard_normal(int(seconds * 8000)) * 3000).astype(np.int16)


async def closed_with(module: VoipbitModule, timeout: float = 5.0) -> int | None:
    """The close code the server ended a module's socket with, or None if it stayed open."""
    assert module.ws is not None
    try:
        async with asyncio.timeout(timeout):
            await module.ws.wait_closed()
    except TimeoutError:
        return None
    code: int | None = module.ws.close_code
    return code
