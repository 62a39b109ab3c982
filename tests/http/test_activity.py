"""What is live right now: ``GET /v1/streams`` (and its clearer twin ``GET /v1/activity``) lists ids
that the item's own resource takes, so an operator can follow a listed audio stream."""

from __future__ import annotations

import secrets

import httpx
import numpy as np
import pytest
from audio_stream_checks import issue_url, session_of
from audio_stream_client import Talk, VoipbitModule

from servers import RunningServer

pytestmark = pytest.mark.timeout(120)


async def test_a_listed_audio_stream_id_is_the_one_its_resource_accepts(server: RunningServer) -> None:
    url, recording_id = await issue_url(server)
    stream_id = f"listed-{secrets.token_hex(4)}"
    module = VoipbitModule(url, {"inbound": np.full(8000, 1000, dtype=np.int16)}, stream_id=stream_id)
    await module.start()
    try:
        await module.run(Talk(0.2))
        listed = await session_of(server, stream_id)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            one = await http.get(f"/v1/streams/{listed['id']}")
            activity = (await http.get("/v1/activity")).json()["activity"]
    finally:
        await module.hangup()
    assert one.status_code == 200, one.text
    assert one.json()["session_id"] == listed["id"] == listed["session_id"]
    assert one.json()["recording_id"] == recording_id
    assert [a["kind"] for a in activity if a["id"] == listed["id"]] == ["audio_stream"]
