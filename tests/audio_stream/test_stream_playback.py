"""Playing stored media into a live voipbit stream (media.play / checkpoint / clear), checked at the
simulated module: the audio arrives paced a bounded lead ahead of playout, is heard sample for
sample, checkpoints come back in order, and clear empties the queue at once."""

from __future__ import annotations

import asyncio
import json
import re
import time
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest
from audio_stream_checks import session_of, ws_base
from audio_stream_client import Talk, VoipbitModule

from media_mgr.audio_stream.playout.pacer import SYNC_PREFIX

from servers import RunningServer
from sounds import tone

pytestmark = pytest.mark.timeout(120)


def upload(server: RunningServer, path: Path, account_id: str) -> tuple[str, bytes]:
    with path.open("rb") as f:
        r = httpx.post(
            f"{server.url}/v1/media", files={"file": (path.name, f)}, data={"account_id": account_id}
        )
    assert r.status_code == 201, r.text
    with wave.open(str(path)) as w:
        return r.json()["id"], w.readframes(w.getnframes())


async def post(server: RunningServer, path: str, body: dict[str, object] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        return await http.post(path, json=body)


def heard(module: VoipbitModule) -> list[str]:
    return [name for _, name in module.acks if not name.startswith(SYNC_PREFIX)]


async def bidirectional(server: RunningServer, stream_id: str) -> VoipbitModule:
    silence = np.zeros(8000 * 30, dtype=np.int16)
    module = VoipbitModule(ws_base(server), {"inbound": silence}, stream_id=stream_id, bidirectional=True)
    await module.start()
    return module


async def test_a_prompt_arrives_paced_and_is_heard_whole(server: RunningServer, audio_dir: Path,
                                                        account_id: str) -> None:  # fmt: skip
    media_id, pcm = upload(server, tone(audio_dir / "greet.wav", rate=8000, seconds=2.0), account_id)
    module = await bidirectional(server, "greet-call")
    talking = asyncio.create_task(module.run(Talk(3.4)))
    await session_of(server, "greet-call")
    asked = time.monotonic()
    r = await post(server, "/v1/streams/greet-call/play", {"media_id": media_id, "checkpoint": "greet"})
    assert r.status_code == 202, r.text
    assert r.json()["sample_rate"] == 8000
    lead_s = r.json()["lead_ms"] / 1000
    await talking
    await module.hangup()

    assert heard(module) == ["greet"]
    syncs = [name for _, name in module.acks if name != "greet"]  # FreeSWITCH fires an event for each
    assert syncs and all(re.fullmatch(r"media_mgr\.internal\.sync\.\d+", name) for name in syncs)
    assert bytes(module.played[: len(pcm)]) == pcm  # every sample, in order
    assert not any(module.played[len(pcm) :])  # then only the padding to a whole frame
    ack_after = module.acks[-1][0] - asked
    assert 1.9 < ack_after < 3.0, ack_after  # heard when the 2 s prompt had played out
    plays = [t for t, m in module.received if isinstance(m, str) and '"media.play"' in m]
    assert len(plays) == 100  # one 20 ms frame per message
    assert plays[-1] - plays[0] > 1.7  # paced at 1x, not sent at once
    # the module never held more than the lead (at most the top preset's 160 ms) and a frame or two;
    # sent naively, all 2 s of it would have waited there
    assert lead_s <= 0.16
    assert max(module.levels) <= (0.16 + 0.06) * 16000, max(module.levels)


async def test_checkpoints_are_acknowledged_in_order(server: RunningServer, audio_dir: Path,
                                                     account_id: str) -> None:  # fmt: skip
    first, _ = upload(server, tone(audio_dir / "a.wav", rate=8000, seconds=0.6), account_id)
    second, _ = upload(server, tone(audio_dir / "b.wav", rate=8000, seconds=0.4, freq=660), account_id)
    module = await bidirectional(server, "order-call")
    talking = asyncio.create_task(module.run(Talk(2.0)))
    await session_of(server, "order-call")
    for media_id, name in ((first, "a"), (second, "b")):
        r = await post(server, "/v1/streams/order-call/play", {"media_id": media_id, "checkpoint": name})
        assert r.status_code == 202, r.text
    await talking
    await module.hangup()
    assert heard(module) == ["a", "b"]


async def test_clear_empties_the_queue_and_cancels_its_checkpoints(server: RunningServer, audio_dir: Path,
                                                                   account_id: str) -> None:  # fmt: skip
    long, _ = upload(server, tone(audio_dir / "long.wav", rate=8000, seconds=3.0), account_id)
    module = await bidirectional(server, "barge-call")
    talking = asyncio.create_task(module.run(Talk(2.0)))
    await session_of(server, "barge-call")
    r = await post(server, "/v1/streams/barge-call/play", {"media_id": long, "checkpoint": "long"})
    assert r.status_code == 202
    r = await post(server, "/v1/streams/barge-call/play", {"media_id": long, "checkpoint": "later"})
    assert r.json()["queued_ahead"] == 1
    await asyncio.sleep(0.7)
    r = await post(server, "/v1/streams/barge-call/clear")
    assert r.status_code == 200, r.text
    assert sorted(r.json()["cancelled"]) == ["later", "long"]
    cleared = time.monotonic()
    live = await session_of(server, "barge-call")
    await talking
    await module.hangup()

    assert module.cleared_at and module.cleared_at[0] - cleared < 0.1
    assert heard(module) == []  # cancelled checkpoints are never acknowledged
    late_plays = [
        t for t, m in module.received if isinstance(m, str) and '"media.play"' in m and t > cleared + 0.1
    ]
    assert not late_plays
    assert live["playout"]["queued"] == 0
    logged = [json.loads(line) for line in server.log().splitlines() if '"audio_stream cleared"' in line]
    assert [sorted(e["cancelled"]) for e in logged if e["stream_id"] == "barge-call"] == [["later", "long"]]


async def test_playing_into_a_stream_that_cannot_hear_it_is_refused(server: RunningServer, audio_dir: Path,
                                                                    account_id: str) -> None:  # fmt: skip
    media_id, _ = upload(server, tone(audio_dir / "x.wav", rate=8000, seconds=0.5), account_id)
    both = {"inbound": np.zeros(16000, dtype=np.int16), "outbound": np.zeros(16000, dtype=np.int16)}
    module = VoipbitModule(ws_base(server), both, stream_id="both-call")
    await module.start()
    talking = asyncio.create_task(module.run(Talk(0.6)))
    await session_of(server, "both-call")
    r = await post(server, "/v1/streams/both-call/play", {"media_id": media_id})
    assert r.status_code == 409
    assert "inbound" in r.json()["detail"]
    r = await post(
        server, "/v1/streams/both-call/play", {"media_id": media_id, "checkpoint": f"{SYNC_PREFIX}1"}
    )
    assert r.status_code == 400  # the sync marks' names are reserved, so an application can filter them
    r = await post(server, "/v1/streams/no-such-stream/play", {"media_id": media_id})
    assert r.status_code == 404
    r = await post(server, "/v1/streams/both-call/play", {"media_id": media_id, "media_name": "x"})
    assert r.status_code == 422
    await talking
    await module.hangup()
