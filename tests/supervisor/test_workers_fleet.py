"""``serve --workers 2``: the workers are instances of one fleet, so whichever worker the kernel hands a
connection to serves it. A live mount's listeners on the shared SHOUT port all hear the source
(the worker without it mirrors it from the one with it), and an audio_stream session is controlled
through either worker (the one without it forwards to the one that holds it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from audio_stream_checks import ws_base
from audio_stream_client import Talk, VoipbitModule
from fleet_shout import Listener, wait_for
from shout_peers import ShoutUrl, kill, push
from supervised import request_on, start_workers

from servers import RunningServer
from sounds import raw_mp3

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def workers(new_database: Callable[[], str], tmp_path: Path) -> Iterator[tuple[RunningServer, int]]:
    srv, shout_port = start_workers(new_database(), tmp_path / "srv", MEDIA_MGR_FLEET_GRACE_SECONDS="1")
    yield srv, shout_port
    srv.stop()


def test_the_workers_are_the_fleet_s_instances(workers: tuple[RunningServer, int]) -> None:
    srv, _ = workers
    for worker in (0, 1):
        body = request_on(srv, worker, "GET", "/v1/instances").json()
        live = [i for i in body["instances"] if i["state"] == "live"]
        assert sorted(i["worker"] for i in live) == [0, 1]
        assert [i["worker"] for i in live if i["self"]] == [worker]


def mounted(srv: RunningServer, worker: int) -> bool:
    """Whether ``worker`` lists /w.mp3 as a mount with a source of its own."""
    r = request_on(srv, worker, "GET", "/v1/streams")
    return any(s.get("mount") == "/w.mp3" for s in r.json()["streams"])


def test_every_listener_on_the_shared_port_hears_the_source_whichever_worker_it_reached(
    workers: tuple[RunningServer, int], tmp_path: Path
) -> None:
    srv, shout_port = workers
    sent = raw_mp3(tmp_path / "live.mp3", seconds=6.0)
    pusher = push(ShoutUrl("source", "hackme", "127.0.0.1", shout_port, "/w.mp3"), tmp_path / "live.mp3",
                  pace=True, extra=["--delay", "1.0"])  # fmt: skip
    try:
        wait_for(lambda: any(mounted(srv, worker) for worker in (0, 1)), what="the source on a worker")
        listeners = [Listener(shout_port, "/w.mp3").start() for _ in range(12)]
        assert pusher.wait(60) == 0
        for listener in listeners:
            listener.join()
    finally:
        kill(pusher)
    for listener in listeners:
        assert listener.status == 200
        assert len(listener.body) > 1000 and listener.body in sent  # MP3 frames, byte for byte
    # Twelve connections on a port two workers accept from: at least one reached the other worker.
    assert "mirroring a mount of another instance" in srv.log()


async def test_a_session_is_controlled_through_either_worker(workers: tuple[RunningServer, int]) -> None:
    srv, _ = workers
    module = VoipbitModule(ws_base(srv), {"inbound": np.zeros(8000 * 20, dtype=np.int16)}, stream_id="on-a-worker",
                           bidirectional=True)  # fmt: skip
    await module.start()
    talking = asyncio.create_task(module.run(Talk(3.0)))
    try:
        deadline = asyncio.get_running_loop().time() + 10
        session = None
        while session is None:
            r = await asyncio.to_thread(request_on, srv, 0, "GET", "/v1/streams")
            found = [s for s in r.json()["streams"] if s.get("stream_id") == "on-a-worker"]
            session = found[0] if found else None
            assert asyncio.get_running_loop().time() < deadline, r.text
            await asyncio.sleep(0.1)
        for worker in (0, 1):  # one of them holds it, the other forwards
            r = await asyncio.to_thread(request_on, srv, worker, "GET", f"/v1/streams/{session['id']}")
            assert r.status_code == 200, r.text
            assert r.json()["stream_id"] == "on-a-worker"
            r = await asyncio.to_thread(request_on, srv, worker, "POST", f"/v1/streams/{session['id']}/clear")
            assert r.status_code == 200, r.text
    finally:
        await talking
        await module.hangup()
