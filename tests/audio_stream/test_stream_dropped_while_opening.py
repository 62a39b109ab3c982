"""A socket that goes while its stream's recording is still opening (queued in a batch,
``recording/opening.py``): the session waits for the module as any dropped one does, then ends,
and its recording is closed. The open is held back by a real lock on ``recordings`` in PostgreSQL,
taken before the stream starts and released once the server shows the session detached."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import numpy as np
import pytest
from audio_stream_checks import LOOP_LAG_TOLERATED, streams, ws_base
from audio_stream_client import Talk, VoipbitModule
from websockets.asyncio.client import connect

from servers import RunningServer, start_server

pytestmark = pytest.mark.timeout(120)

TONE = (np.random.default_rng(11).standard_normal(8000) * 3000).astype("<i2")
RECONNECT_S = 3  # how long the server waits for a dropped module (the lock is released well before)


@pytest.fixture(scope="module")
def db_url(new_database: Callable[[], str]) -> str:
    return new_database()


@pytest.fixture(scope="module")
def srv(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("dropped-opening")
    server = start_server({"MEDIA_MGR_DATABASE_URL": db_url, "MEDIA_MGR_DATA_DIR": str(data),
                           "MEDIA_MGR_TIMEOUT_WS_RECONNECT": str(RECONNECT_S), **LOOP_LAG_TOLERATED},
                          data / "server.log")  # fmt: skip
    yield server
    server.stop()


@pytest.fixture
async def opens_held(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A transaction holding ``recordings`` in SHARE mode: reads go on, no recording opens until
    the test rolls it back."""
    conn = await asyncpg.connect(db_url)
    tx = conn.transaction()
    await tx.start()
    await conn.execute("LOCK TABLE recordings IN SHARE MODE")
    try:
        yield conn
    finally:
        if not conn.is_closed():
            await tx.rollback()
            await conn.close()


async def wait_for(srv: RunningServer, what: Callable[[list[dict[str, Any]]], bool], timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not what(await streams(srv)):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def opening(srv: RunningServer) -> dict[str, Any]:
    """The one session, once the server shows it opening its recording."""
    assert await wait_for(srv, lambda s: [x["state"] for x in s] == ["opening"], 10)
    (session,) = await streams(srv)
    found: dict[str, Any] = session
    return found


async def dropped_while_opening(dialect: str, srv: RunningServer, path: str) -> str:
    """Audio sent (the format known, so the recording is asked for), then the TCP connection dropped
    while the recording opens; the name the recording will have."""
    url = f"{ws_base(srv)}/{path}"
    if dialect == "voipbit":
        module = VoipbitModule(url, {"inbound": TONE}, stream_id=path)
        await module.start()
        await module.run(Talk(0.2))
        await opening(srv)
        assert module.ws is not None
        module.ws.transport.abort()
        return f"audio_stream {module.call_id}.wav"
    async with connect(f"{url}?rate=8000", compression=None, open_timeout=10, ping_interval=None) as ws:
        for i in range(0, 1600, 160):
            await ws.send(TONE[i : i + 160].tobytes())
        session = await opening(srv)
        ws.transport.abort()
    return f"audio_stream {session['session_id']}.wav"


@pytest.mark.parametrize("dialect", ["voipbit", "binary"])
async def test_a_socket_dropped_while_its_recording_opens_ends_its_session_and_closes_the_recording(
    srv: RunningServer, opens_held: asyncpg.Connection, db_url: str, dialect: str
) -> None:
    assert await streams(srv) == []
    path = f"dropped-opening-{dialect}"
    name = await dropped_while_opening(dialect, srv, path)
    assert await wait_for(srv, lambda s: [x["state"] for x in s] == ["detached"], 10)
    await opens_held.execute("ROLLBACK")  # the batched open goes ahead, after the socket went
    await opens_held.close()

    # The session waits RECONNECT_S for the module, then ends (it used to stay "active" for ever).
    assert await wait_for(srv, lambda s: s == [], RECONNECT_S + 15), await streams(srv)
    conn = await asyncpg.connect(db_url)
    try:
        row = await conn.fetchrow("SELECT state, end_reason FROM recordings WHERE name = $1", name)
    finally:
        await conn.close()
    assert row is not None
    assert (row["state"], row["end_reason"]) == ("interrupted", "disconnected")
