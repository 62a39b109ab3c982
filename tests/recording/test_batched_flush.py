"""Many recordings at once (2000 SHOUT sources): the recorder commits their buffers in shared
transactions, each byte where it belongs; one taken by another instance does not hold the others back,
and the heartbeat never waits on (so never deadlocks with) a row a flush holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from stored_chunks import stored

from media_mgr.recording.config import RecorderConfig
from media_mgr.recording.ingest import NewRecording, RecordingEnded, flush_together
from media_mgr.recording.recorder import Recorder
from media_mgr.store.blobs import BlobStore
from media_mgr.store.recordings import RecordingStore

from sounds import raw_mp3

SLOW = RecorderConfig(flush_seconds=3600.0, recovery_grace=3600.0)  # nothing flushes unless asked


@pytest.fixture
async def recorder(pool: asyncpg.Pool) -> AsyncIterator[Recorder]:
    rec = Recorder(RecordingStore(pool, BlobStore(pool, 256 * 1024)), SLOW)
    await rec.start()
    yield rec
    await rec.stop()


async def test_buffers_of_many_recordings_commit_together_byte_exact(
    recorder: Recorder, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    data = raw_mp3(tmp_path / "a.mp3", seconds=2.0)
    ingests = []
    for n in range(12):
        rec = await recorder.create(NewRecording(None, f"batch{n}.mp3"))
        ingests.append(await recorder.begin(rec.id, origin="test", peer="127.0.0.1:1"))
    sent = {ingest.id: bytearray() for ingest in ingests}
    for step in range(3):  # three rounds: each batch appends at the right place after the last
        for k, ingest in enumerate(ingests):
            piece = data[(step * 7 + k) * 144 : (step * 7 + k + 3) * 144]
            await ingest.write(piece)
            sent[ingest.id] += piece
        await flush_together(ingests)
        for ingest in ingests:
            assert ingest.buffered == 0 and ingest.stored == len(sent[ingest.id])
            assert await stored(pool, ingest.id) == sent[ingest.id]
            row = await pool.fetchrow("SELECT size, state FROM recordings WHERE id = $1", ingest.id)
            assert row is not None and (row["size"], row["state"]) == (len(sent[ingest.id]), "recording")
    for ingest in ingests:
        done = await ingest.finish()
        assert done.state == "complete" and done.size == len(sent[ingest.id])


async def test_a_recording_taken_elsewhere_ends_alone_and_the_others_are_stored(
    recorder: Recorder, pool: asyncpg.Pool
) -> None:
    ingests = []
    for n in range(3):
        rec = await recorder.create(NewRecording(None, f"taken{n}.mp3"))
        ingests.append(await recorder.begin(rec.id, origin="test", peer="127.0.0.1:1"))
    for ingest in ingests:
        await ingest.write(b"\xff" * 100)
    taken = ingests[1]
    await pool.execute(
        "UPDATE recordings SET owner = owner + 1 WHERE id = $1", taken.id
    )  # another instance's
    await flush_together(ingests)
    assert taken.closed and taken.id not in {i.id for i in recorder.live()}
    assert await stored(pool, taken.id) == b""  # nothing written into a recording we no longer hold
    with pytest.raises(RecordingEnded):
        await taken.write(b"more")
    for ingest in (ingests[0], ingests[2]):
        assert not ingest.closed and await stored(pool, ingest.id) == b"\xff" * 100


async def test_the_heartbeat_skips_a_row_a_flush_holds_instead_of_waiting(
    recorder: Recorder, pool: asyncpg.Pool
) -> None:
    held_rec = await recorder.create(NewRecording(None, "held.mp3"))
    free_rec = await recorder.create(NewRecording(None, "free.mp3"))
    held = await recorder.begin(held_rec.id, origin="test", peer="127.0.0.1:1")
    free = await recorder.begin(free_rec.id, origin="test", peer="127.0.0.1:1")
    await pool.execute("UPDATE recordings SET heartbeat_at = now() - interval '1 hour'")
    async with pool.acquire() as flusher, flusher.transaction():
        await flusher.execute("SELECT 1 FROM recordings WHERE id = $1 FOR UPDATE", held.id)
        # With the lock held (as a batch of flushes holds its rows), the heartbeat still completes:
        # it used to wait for every row of its owner (and deadlocked with a flush at 2000 sources).
        await asyncio.wait_for(recorder.store.heartbeat(recorder.owner), 30)
    ages = {r["id"]: r["old"] for r in await pool.fetch(
        "SELECT id, heartbeat_at < now() - interval '30 minutes' AS old FROM recordings WHERE id = ANY($1)",
        [held.id, free.id])}  # fmt: skip
    assert ages == {held.id: True, free.id: False}
