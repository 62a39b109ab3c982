"""The owner lock across a restart of a private PostgreSQL (tests/private_services.py), in process.

A restart drops every session advisory lock. The instance must take its own key again (never a new
one: its rows name the key), and a survivor that looks right after the restart must not mistake
the live instance for a dead one (heartbeat stale, lock free for a moment).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from private_services import PrivatePostgres

from media_mgr.recording.config import RecorderConfig
from media_mgr.recording.ingest import EventPublisher, NewRecording
from media_mgr.recording.recorder import Recorder
from media_mgr.store import migrate
from media_mgr.store.blobs import BlobStore
from media_mgr.store.owner_lock import LOCK_NAMESPACE
from media_mgr.store.recordings import RecordingStore

from sounds import raw_mp3

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

GRACE = 2.0
CONFIG = RecorderConfig(flush_seconds=0.4, recovery_grace=GRACE)


@pytest.fixture
def pg() -> Iterator[PrivatePostgres]:
    with PrivatePostgres() as cluster:
        yield cluster


@pytest.fixture
async def pool(pg: PrivatePostgres) -> AsyncIterator[asyncpg.Pool]:
    await migrate.migrate_database(pg.dsn, migrate.default_dir(), connect_timeout=10)
    p = await asyncpg.create_pool(pg.dsn, min_size=1, max_size=6, command_timeout=5, timeout=5)
    yield p
    await p.close()


def recorder(pool: asyncpg.Pool, publish: EventPublisher | None = None) -> Recorder:
    return Recorder(RecordingStore(pool, BlobStore(pool, 256 * 1024)), CONFIG, publish=publish)


async def key_is_held(dsn: str, key: int) -> bool:
    """Whether some session holds ``key`` (asked from a session of our own, which lets go at once)."""
    conn = await asyncpg.connect(dsn)
    try:
        got: bool = await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_NAMESPACE, key)
        return not got
    finally:
        await conn.close()


async def restart(pg: PrivatePostgres, down_seconds: float) -> None:
    await asyncio.to_thread(pg.stop)
    await asyncio.sleep(down_seconds)
    await asyncio.to_thread(pg.start)


async def test_the_lock_comes_back_under_the_same_key_even_if_a_survivor_probes_it_first(
    pg: PrivatePostgres, pool: asyncpg.Pool
) -> None:
    async with recorder(pool) as a:
        key = a.owner
        assert await key_is_held(pg.dsn, key)
        await restart(pg, 0.5)
        probe = await asyncpg.connect(pg.dsn)  # a survivor's recovery probing the free key first
        assert await probe.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_NAMESPACE, key)
        await asyncio.sleep(1.5)  # A's heartbeat/watchdog runs into the probe meanwhile
        await probe.close()
        deadline = time.monotonic() + 5
        while not await key_is_held(pg.dsn, key) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert a.owner == key  # rows name this key: a new one would orphan them
        assert await key_is_held(pg.dsn, key)


async def test_a_survivor_starting_right_after_a_restart_closes_nothing_live(
    pg: PrivatePostgres, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    data = raw_mp3(tmp_path / "a.mp3", seconds=4.0)
    half = len(data) // 2
    async with recorder(pool) as a:
        ingest = await a.begin_new(NewRecording(None, "live"), origin="test")
        assert await ingest.write(data[:half])
        await restart(pg, GRACE + 1.0)  # longer than the grace: A's heartbeat is stale now
        async with recorder(pool) as b:  # enters with recovery, before A's lock is back
            assert (await b.get(ingest.id)).state == "recording"
            for _ in range(int(3 * GRACE / 0.25)):  # and B's ticker recovers on (grace period)
                await asyncio.sleep(0.25)
                assert await b.recover() == []
            assert await ingest.write(data[half:])
            done = await ingest.finish()
            assert (done.state, done.end_reason) == ("complete", "eof")
            stored = await pool.fetch(
                """SELECT c.data FROM blob_chunks c JOIN recordings r ON r.blob_id = c.blob_id
                    WHERE r.id = $1 ORDER BY c.pos""", ingest.id)  # fmt: skip
            assert b"".join(r["data"] for r in stored) == data


async def test_a_killed_owner_is_closed_by_one_survivor_once(pool: asyncpg.Pool, tmp_path: Path) -> None:
    data = raw_mp3(tmp_path / "k.mp3", seconds=2.0)
    a = recorder(pool)
    await a.start()
    ingest = await a.begin_new(NewRecording(None, "killed"), origin="test")
    await ingest.write(data)
    await ingest.flush()
    await a._work.stop(1.0)  # the process "dies": no more heartbeats ...
    await a._lock.release()  # ... and PostgreSQL drops its lock with its connection
    events: list[str] = []

    async def publish(key: str, body: Mapping[str, Any]) -> None:
        events.append(f"{key} {body['Recording-ID']}")

    survivors = [recorder(pool, publish) for _ in range(3)]
    async with survivors[0] as b, survivors[1], survivors[2]:
        deadline = time.monotonic() + 4 * GRACE
        while (await b.get(ingest.id)).state == "recording" and time.monotonic() < deadline:
            await asyncio.gather(*(r.recover() for r in survivors))
        await asyncio.sleep(2 * GRACE)  # every survivor's ticker has recovered again since
        done = await b.get(ingest.id)
        assert (done.state, done.end_reason, done.size) == ("interrupted", "crash", len(data))
    assert len(events) == 1 and events[0].startswith("recording.interrupted"), events


async def test_a_source_paused_longer_than_the_grace_is_not_declared_crashed(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    data = raw_mp3(tmp_path / "p.mp3", seconds=2.0)
    half = len(data) // 2
    async with recorder(pool) as a, recorder(pool) as b:
        ingest = await a.begin_new(NewRecording(None, "paused"), origin="test")
        assert await ingest.write(data[:half])
        for _ in range(int(3 * GRACE / 0.25)):  # the source says nothing for three graces
            await asyncio.sleep(0.25)
            assert await b.recover() == []
        assert await ingest.write(data[half:])
        done = await ingest.finish()
        assert (done.state, done.end_reason, done.size) == ("complete", "eof", len(data))
