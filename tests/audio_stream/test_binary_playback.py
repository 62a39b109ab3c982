"""Playing stored media into a binary-dialect stream: amigniter's streamAudio (its app plays the
file the module writes) or mod_audio_fork's playAudio, paced in segments; clear is killAudio."""

from __future__ import annotations

import asyncio
import base64
import json
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest
from audio_stream_checks import ws_base
from websockets.asyncio.client import connect

from servers import RunningServer
from sounds import tone

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("subprotocol", "kind"), [(None, "streamAudio"), ("audio.drachtio.org", "playAudio")]
)
async def test_a_prompt_goes_out_as_the_module_json_and_clear_as_kill_audio(
    server: RunningServer, audio_dir: Path, account_id: str, subprotocol: str | None, kind: str
) -> None:
    prompt = tone(audio_dir / "p.wav", rate=16000, seconds=2.5)
    with prompt.open("rb") as f:
        r = httpx.post(
            f"{server.url}/v1/media", files={"file": ("p.wav", f)}, data={"account_id": account_id}
        )
    media_id = r.json()["id"]
    with wave.open(str(prompt)) as w:
        pcm = w.readframes(w.getnframes())
    call = f"bin-play-{kind}"
    url = f"{ws_base(server)}/{call}?rate=16000"
    got: list[tuple[float, dict[str, object]]] = []
    async with connect(url, subprotocols=[subprotocol] if subprotocol else None, open_timeout=5) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"callId": call}))

        async def talk() -> None:
            for _ in range(150):
                await ws.send(bytes(640))
                await asyncio.sleep(0.02)

        async def listen() -> None:
            async for message in ws:
                got.append((asyncio.get_running_loop().time(), json.loads(message)))

        talking, listening = asyncio.create_task(talk()), asyncio.create_task(listen())
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            r = await http.post(
                f"/v1/streams/{call}/play", json={"media_id": media_id, "checkpoint": "hello"}
            )
            assert r.status_code == 202, r.text
            assert r.json()["sample_rate"] == 16000  # the binary dialect takes the stream's rate
            async with asyncio.timeout(10):  # the prompt's three 1 s segments, paced, then barge in
                while len([m for _, m in got if m.get("type") == kind]) < 3:
                    await asyncio.sleep(0.05)
            r = await http.post(f"/v1/streams/{call}/clear")
            assert r.status_code == 200
        await talking
        listening.cancel()
    audio = [m for _, m in got if m.get("type") == kind]
    key = "audioData" if kind == "streamAudio" else "audioContent"
    sent = b"".join(base64.b64decode(m["data"][key]) for m in audio)  # type: ignore[index]
    assert sent == pcm + bytes(-len(pcm) % 640)  # the whole prompt, whole 20 ms frames
    assert len(audio) == 3  # 1 s segments, paced: not one message of everything
    arrivals = [t for t, m in got if m.get("type") == kind]
    assert arrivals[-1] - arrivals[0] > 1.5
    assert [m for _, m in got if m.get("type") == "killAudio"]
    assert np.frombuffer(sent, dtype="<i2").any()
