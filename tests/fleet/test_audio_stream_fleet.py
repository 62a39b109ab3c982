"""mod_audio_stream sessions across two real ``media-mgr serve`` instances on one database.

A session held by A is listed, described, played into and cleared through B (B forwards to A); a
voipbit reconnect and an amigniter reconnect that land on B continue A's session and its one
recording, the gap as silence where it belongs (compared sample for sample: PCM is lossless); and
when A is killed, B forgets its sessions once A is declared gone.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from audio_stream_checks import (
    LOOP_LAG_TOLERATED,
    assert_same_audio,
    issue_url,
    noise,
    recorded_pcm,
    recording,
    streams,
    ws_base,
)
from audio_stream_client import TICK, BinaryModule, Reconnect, Talk, VoipbitModule
from websockets.asyncio.client import ClientConnection, connect

from servers import RunningServer, start_server
from sounds import tone

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def pair(new_database: Callable[[], str], tmp_path: Path) -> Iterator[tuple[RunningServer, RunningServer]]:
    env = {"MEDIA_MGR_DATABASE_URL": new_database(), "MEDIA_MGR_FLEET_GRACE_SECONDS": "1",
           **LOOP_LAG_TOLERATED}  # fmt: skip
    a = start_server(env, tmp_path / "a.log")
    b = start_server(env, tmp_path / "b.log")
    yield a, b
    for s in (a, b):
        s.stop(signal.SIGKILL)


def instance_id(server: RunningServer) -> str:
    r = httpx.get(f"{server.url}/v1/instances", timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["self"])


async def listed(server: RunningServer, stream_id: str, *, on: str, timeout: float = 10.0) -> dict[str, Any]:
    """The session ``server`` lists for ``stream_id``, held by instance ``on``, once it does."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [s for s in await streams(server) if s["stream_id"] == stream_id and s["instance_id"] == on]
        if found:
            return found[0]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{server.url} does not list {stream_id} on {on}: {await streams(server)}")
        await asyncio.sleep(0.05)


async def call(server: RunningServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        return await http.request(method, path, **kwargs)


def upload(server: RunningServer, path: Path) -> tuple[str, bytes]:
    with path.open("rb") as f:
        r = httpx.post(f"{server.url}/v1/media", files={"file": (path.name, f)}, timeout=30)
    assert r.status_code == 201, r.text
    with wave.open(str(path)) as w:
        return r.json()["id"], w.readframes(w.getnframes())


def ws_port(server: RunningServer) -> int:
    """Where mod_audio_stream connects: the audio_stream listener's port when it has one."""
    port: int = getattr(server, "ws_port", 0) or server.port
    return port


def on_b(url: str, a: RunningServer, b: RunningServer) -> str:
    """The same URL (path, query, token) on B's port: what a module reconnecting elsewhere uses."""
    return url.replace(f":{ws_port(a)}/", f":{ws_port(b)}/")


async def test_a_session_on_a_is_listed_described_played_into_and_cleared_through_b(
    pair: tuple[RunningServer, RunningServer], audio_dir: Path
) -> None:
    a, b = pair
    a_id, b_id = instance_id(a), instance_id(b)
    prompt, pcm = upload(b, tone(audio_dir / "prompt.wav", rate=8000, seconds=1.0))
    long, _ = upload(b, tone(audio_dir / "long.wav", rate=8000, seconds=4.0, freq=660))
    silence = np.zeros(8000 * 30, dtype=np.int16)
    module = VoipbitModule(ws_base(a), {"inbound": silence}, stream_id="held-by-a", bidirectional=True)
    await module.start()
    talking = asyncio.create_task(module.run(Talk(4.0)))

    entry = await listed(b, "held-by-a", on=a_id)
    sid = entry["id"]
    assert entry["kind"] == "audio_stream"
    assert (await listed(a, "held-by-a", on=a_id))["id"] == sid  # A lists it as its own, same id
    for server in (a, b):
        r = await call(server, "GET", f"/v1/streams/{sid}")
        assert r.status_code == 200, r.text
        assert r.json()["session_id"] == sid
        assert r.json()["stream_id"] == "held-by-a"
    r = await call(b, "GET", "/v1/streams/held-by-a")  # by stream_id too
    assert r.status_code == 200 and r.json()["session_id"] == sid
    # A forwarded request acts on what its receiver holds and is never forwarded again.
    r = await call(b, "GET", f"/v1/streams/{sid}", headers={"x-media-mgr-forwarded": a_id})
    assert r.status_code == 404, r.text
    r = await call(b, "GET", f"/v1/streams/{'0' * 32}")
    assert r.status_code == 404, r.text
    # The hand-over route is for instances only: loopback, an admin, a forged token get nothing.
    ask = {"session_id": sid, "key": "v|x|y", "instance_id": b_id, "owner": 1}
    for headers in ({}, {"x-media-mgr-fleet": "0" * 64}):
        r = await call(a, "POST", "/internal/audio-stream/handover", json=ask, headers=headers)
        assert r.status_code == 401, r.text

    r = await call(b, "POST", f"/v1/streams/{sid}/play", json={"media_id": prompt, "checkpoint": "hello"})
    assert r.status_code == 202, r.text
    assert r.json()["session_id"] == sid
    while not any(name == "hello" for _, name in module.acks):
        await asyncio.sleep(0.05)
    r = await call(b, "POST", f"/v1/streams/{sid}/play", json={"media_id": long, "checkpoint": "long"})
    assert r.status_code == 202, r.text
    r = await call(b, "POST", f"/v1/streams/{sid}/clear")
    assert r.status_code == 200, r.text
    assert r.json() == {"session_id": sid, "cleared": True, "cancelled": ["long"]}
    r = await call(b, "POST", f"/v1/streams/{sid}/play", json={"media_name": "no-such-thing"})
    assert r.status_code == 404, r.text  # A's answer, passed through
    await talking
    await module.hangup()

    assert bytes(module.played[: len(pcm)]) == pcm  # the prompt asked for on B, heard whole from A
    assert module.cleared_at  # the clear asked for on B reached the module on A
    assert "long" not in [name for _, name in module.acks]
    assert b_id != a_id


async def test_a_voipbit_reconnect_on_b_continues_the_one_recording(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    a, b = pair
    a_id, b_id = instance_id(a), instance_id(b)
    url, recording_id = await issue_url(a, name="moved.wav")
    module = VoipbitModule(url, {"inbound": noise(12, 11)}, stream_id="moving-call")
    await module.start()
    await module.run(Talk(1.5))
    before = await listed(b, "moving-call", on=a_id)
    module.url = on_b(url, a, b)
    await module.run(Reconnect(1.0), Talk(1.5))
    after = await listed(b, "moving-call", on=b_id)
    assert after["id"] == before["id"]  # the same session, now held by B
    assert after["recording_id"] == recording_id
    assert after["reconnects"] == 1
    assert not [s for s in await streams(a) if s["stream_id"] == "moving-call" and s["instance_id"] == a_id]
    await module.graceful()

    got, rate = await recorded_pcm(b, recording_id)
    assert rate == 8000
    expected = module.expected("inbound")
    assert_same_audio(got[:, 0], expected, "inbound")  # the second lost while reconnecting: silence
    assert not expected[int(1.5 * 8000) : int(2.5 * 8000)].any()  # (there is a gap to get right)
    rec = await recording(b, recording_id)
    assert rec["state"] == "complete"
    r = await call(b, "GET", "/v1/recordings")
    assert [x["id"] for x in r.json()["items"]] == [recording_id]  # one recording for the call
    assert "continues a session moved from another instance" in b.log()
    assert "handed over to the instance its module reconnected to" in a.log()


async def binary_frames(module: BinaryModule, ws: ClientConnection, seconds: float) -> None:
    for _ in range(round(seconds / TICK)):
        await asyncio.sleep(max(0.0, module.t0 + module.tick * TICK - time.monotonic()))
        await ws.send(module._frame())
        module.tick += 1


async def test_an_amigniter_reconnect_on_b_continues_the_one_recording(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    """amigniter (ixwebsocket build): the same metadata first on the same URL after the socket was
    lost; its only media clock is the byte count, so the gap is told by arrival times."""
    a, b = pair
    url, recording_id = await issue_url(a, name="moved-binary.wav")
    metadata = json.dumps({"callId": "b7e1c0de-0000-4000-8000-000000000001", "sampleRate": 8000})
    module = BinaryModule(url, {"inbound": noise(12, 12)}, metadata=metadata)
    module.t0 = time.monotonic()
    first = await connect(url, compression=None, open_timeout=10, ping_interval=None)
    await first.send(metadata)
    await binary_frames(module, first, 1.5)
    first.transport.abort()  # the socket is lost without a close
    await asyncio.sleep(1.0)
    second = await connect(on_b(url, a, b), compression=None, open_timeout=10, ping_interval=None)
    module.tick = int(np.ceil((time.monotonic() - module.t0) / TICK))  # what passed meanwhile was dropped
    await second.send(metadata)
    await binary_frames(module, second, 1.5)
    await second.close(1000, "Normal closure")

    got, _ = await recorded_pcm(b, recording_id)
    expected = module.expected("inbound")
    assert_same_audio(got[:, 0], expected, "inbound")
    assert not expected[int(1.5 * 8000) : int(2.5 * 8000)].any()
    assert (await recording(b, recording_id))["state"] == "complete"
    r = await call(b, "GET", "/v1/recordings")
    assert [x["id"] for x in r.json()["items"]] == [recording_id]
    assert "continues a session moved from another instance" in b.log()


async def test_a_killed_instances_sessions_leave_the_listing_and_a_reconnect_starts_anew(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    """A killed mid-session: once declared gone (grace 1 s) its session is no longer listed on B and
    its recording is closed as interrupted (crash) with what A had committed. The module's reconnect
    to B then starts a new session and a new recording (A's was closed: it is never revived)."""
    a, b = pair
    a_id, b_id = instance_id(a), instance_id(b)
    url, first_id = await issue_url(a, name="killed.wav")
    module = VoipbitModule(url, {"inbound": noise(12, 13)}, stream_id="orphan-call")
    await module.start()
    await module.run(Talk(1.5))
    await listed(b, "orphan-call", on=a_id)
    a.stop(signal.SIGKILL)
    deadline = time.monotonic() + 30
    while [s for s in await streams(b) if s["instance_id"] == a_id]:
        assert time.monotonic() < deadline, "A's session still listed on B"
        await asyncio.sleep(0.2)
    rec = await recording(b, first_id)
    assert (rec["state"], rec["end_reason"]) == ("interrupted", "crash")
    got, _ = await recorded_pcm(b, first_id)
    sent = module.expected("inbound")
    assert 0 < len(got) <= len(sent)
    assert_same_audio(got[:, 0], sent[: len(got)], "what A committed")

    module.url = on_b(url, a, b)
    await module.run(Reconnect(0.5))
    resumed_from = module.tick * module.frame
    await module.run(Talk(1.0))
    now_on_b = await listed(b, "orphan-call", on=b_id)
    await module.graceful()
    second_id = now_on_b["recording_id"]
    assert second_id != first_id
    got2, _ = await recorded_pcm(b, second_id)
    assert_same_audio(got2[:, 0], module.expected("inbound")[resumed_from:], "the new recording")
    assert (await recording(b, first_id))["state"] == "interrupted"  # still closed, not revived
