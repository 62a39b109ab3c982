"""``/metrics`` does not grow with traffic: no label names a session, a recording or a mount, so the
number of series is the same while N sessions are live and after they are gone (issue 11 item 11)."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
from audio_stream_checks import issue_url, recording
from audio_stream_client import Talk, VoipbitModule

from servers import RunningServer

pytestmark = pytest.mark.timeout(120)
SESSIONS = 6


async def series(server: RunningServer) -> set[str]:
    """Every series ``/metrics`` exposes, by name and labels (values left out)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        r = await http.get("/metrics")
    assert r.status_code == 200
    return {line.rsplit(" ", 1)[0] for line in r.text.splitlines() if line and not line.startswith("#")}


async def one_stream(server: RunningServer, seed: int, live: asyncio.Barrier) -> str:
    url, recording_id = await issue_url(server)
    tone = (np.random.default_rng(seed).standard_normal(8000) * 2000).astype(np.int16)
    module = VoipbitModule(url, {"inbound": tone}, stream_id=f"metrics-{seed}")
    await module.start()
    await module.run(Talk(0.3))
    await live.wait()  # every session is live here
    await live.wait()  # ... until the series were read
    await module.hangup()
    return recording_id


async def test_the_series_count_is_the_same_with_n_sessions_live_and_after(server: RunningServer) -> None:
    warm = asyncio.Barrier(1)
    await recording(server, await one_stream(server, 0, warm))  # every bounded label value seen once
    await series(server)  # ... the scrape's own route too
    baseline = await series(server)
    live = asyncio.Barrier(SESSIONS + 1)
    streams = [asyncio.create_task(one_stream(server, seed, live)) for seed in range(1, SESSIONS + 1)]
    await live.wait()
    during = await series(server)
    await live.wait()
    for recording_id in await asyncio.gather(*streams):
        assert (await recording(server, recording_id))["state"] == "complete"
    after = await series(server)
    assert during == baseline, sorted(during ^ baseline)[:10]
    assert after == baseline, sorted(after ^ baseline)[:10]
