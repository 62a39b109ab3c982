"""The recordings core against the real PostgreSQL: what is written is what is stored, on time,
closed once, limits honoured, and a crashed writer's recordings found and closed as interrupted."""

from __future__ import annotations

import asyncio
import hashlib
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest

from media_mgr.recording.ingest import NewRecording, RecordingEnded, RecordingLimits
from media_mgr.recording.meter import PcmFormat
from media_mgr.recording.recorder import Recorder
from media_mgr.store.blobs import BlobStore
from media_mgr.store.recordings import RecordingStore

from sounds import decode, raw_mp3

FAST = RecordingLimits(flush_seconds=0.4, recovery_grace=0.0)




@pytest.fixture
async def pool(database_url: str, server: object) -> AsyncIterator[asyncpg.Pool]:
    # ``server`` has applied the migrations to the run's database.
    p = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    yield p
    await p.close()


@pytest.fixture
async def recorder(pool: asyncpg.Pool) -> AsyncIterator[Recorder]:
    events: list[tuple[str, dict[str, Any]]] = []

    async def publish(key: str, body: Any) -> None:
        events.append((key, dict(body)))

    rec = Recorder(RecordingStore(pool, BlobStore(pool, 256 * 1024)), FAST, publish=publish)
    rec.events = events  # type: ignore[attr-defined]
    await rec.start()
    yield rec
    await rec.stop()


async def stored(pool: asyncpg.Pool, recording_id: str) -> bytes:
    rows = await pool.fetch(
        """SELECT c.data FROM blob_chunks c JOIN recordings r ON r.blob_id = c.blob_id
            WHERE r.id = $1 ORDER BY c.pos""", recording_id)  # fmt: skip
    return b"".join(r["data"] for r in rows)


async def test_mp3_pieces_are_stored_byte_exact_with_the_frame_count_duration(
    recorder: Recorder, pool: asyncpg.Pool, tmp_path: Path, account_id: str
) -> None:
    data = raw_mp3(tmp_path / "a.mp3")
    assert data[:2] == b"\xff\xe3"  # MPEG-2.5 Layer III, as an 8 kHz call gives
    rec = await recorder.create(NewRecording(account_id, "call.mp3"))
    assert rec.state == "pending"
    ingest = await recorder.begin(rec.id, origin="test", peer="127.0.0.1:1")
    for i in range(0, len(data), 417):
        assert await ingest.write(data[i : i + 417])
    done = await ingest.finish()
    assert done.state == "complete" and done.end_reason == "eof"
    assert await stored(pool, rec.id) == data
    assert done.size == len(data) and done.sha256 == hashlib.sha256(data).hexdigest()
    samples = len(decode(data))
    assert done.duration_ms == round(samples * 1000 / 8000)  # what mpg123 plays, from counted frames
    assert (done.sample_rate, done.channels, done.has_media) == (8000, 1, True)
    media = await pool.fetchrow("SELECT * FROM media WHERE id = $1", rec.id)
    assert media["blob_id"] == done.blob_id and media["duration_ms"] == done.duration_ms
    assert media["content_type"] == "audio/mpeg" and media["account_id"] == account_id
    assert ("recording.complete", "complete") in [(k, b["Event-Name"]) for k, b in recorder.events]  # type: ignore[attr-defined]


async def test_audio_reaches_the_database_within_a_second_without_finishing(
    recorder: Recorder, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    data = raw_mp3(tmp_path / "b.mp3", seconds=1.0)
    ingest = await recorder.begin_new(NewRecording(None, "slow"), origin="test")
    await ingest.write(data[:1000])
    await asyncio.sleep(1.0)  # no more writes: the ticker alone must commit it
    assert await stored(pool, ingest.id) == data[:1000]
    assert (await recorder.get(ingest.id)).state == "recording"
    await ingest.finish()


async def test_wav_recording_gets_its_header_sizes_fixed_at_the_end(
    recorder: Recorder, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    samples = (np.sin(np.arange(16000 * 2) / 7) * 8000).astype("<i2").tobytes()
    ingest = await recorder.begin_new(NewRecording(None, "ws.wav", fmt="wav"), origin="audio_stream",
                                      pcm=PcmFormat(16000, 1))  # fmt: skip
    for i in range(0, len(samples), 640):  # 20 ms frames, as mod_audio_stream sends them
        await ingest.write(samples[i : i + 640])
    done = await ingest.finish()
    blob = await stored(pool, ingest.id)
    (tmp_path / "out.wav").write_bytes(blob)
    with wave.open(str(tmp_path / "out.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()) == (16000, 1, 2, 32000)
        assert w.readframes(32000) == samples
    assert done.duration_ms == 2000 and done.size == len(blob) == 44 + len(samples)
    assert done.sha256 == hashlib.sha256(blob).hexdigest() and done.has_media


async def test_duration_limit_closes_the_recording_at_a_frame_and_keeps_it(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    rec = Recorder(RecordingStore(pool, BlobStore(pool, 256 * 1024)), RecordingLimits(max_seconds=1.0))
    await rec.start()
    try:
        data = raw_mp3(tmp_path / "c.mp3", seconds=3.0)
        ingest = await rec.begin_new(NewRecording(None, "limited"), origin="test")
        taken = True
        for i in range(0, len(data), 500):
            taken = await ingest.write(data[i : i + 500])
            if not taken:
                break
        assert not taken
        with pytest.raises(RecordingEnded):
            await ingest.write(b"more")
        done = await ingest.finish()
        assert (done.state, done.end_reason) == ("complete", "limit_duration")
        assert 1000 - 72 < done.duration_ms <= 1000  # whole 72 ms frames, never past the limit
        body = await stored(pool, ingest.id)
        assert data.startswith(body) and len(decode(body)) * 1000 // 8000 == done.duration_ms
    finally:
        await rec.stop()


async def test_size_limit_keeps_exactly_the_limit(pool: asyncpg.Pool, tmp_path: Path) -> None:
    rec = Recorder(RecordingStore(pool, BlobStore(pool, 256 * 1024)), RecordingLimits(max_bytes=3000))
    await rec.start()
    try:
        data = raw_mp3(tmp_path / "d.mp3")
        ingest = await rec.begin_new(NewRecording(None, "small"), origin="test")
        assert await ingest.write(data[:2000])
        assert not await ingest.write(data[2000:4000])
        done = await ingest.finish()
        assert (done.state, done.end_reason, done.size) == ("complete", "limit_size", 3000)
        assert await stored(pool, ingest.id) == data[:3000]
    finally:
        await rec.stop()


async def test_a_recording_takes_one_source_only(recorder: Recorder) -> None:
    rec = await recorder.create(NewRecording(None, "once"))
    ingest = await recorder.begin(rec.id, origin="test")
    with pytest.raises(RecordingEnded):
        await recorder.begin(rec.id, origin="test")
    await ingest.finish()
    with pytest.raises(RecordingEnded):  # and none after it ended
        await recorder.begin(rec.id, origin="test")


async def test_a_crashed_writers_recording_is_closed_as_interrupted_with_its_audio(
    database_url: str, recorder: Recorder, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    data = raw_mp3(tmp_path / "e.mp3")
    doomed_pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    doomed = Recorder(RecordingStore(doomed_pool, BlobStore(doomed_pool, 256 * 1024)), FAST)
    await doomed.start()
    ingest = await doomed.begin_new(NewRecording(None, "crash"), origin="test")
    await ingest.write(data[:3000])
    assert await ingest.flush()
    # A live writer is left alone even when its heartbeat looks old: it still holds its lock.
    await pool.execute("UPDATE recordings SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", ingest.id)
    assert await recorder.recover() == []
    doomed._ticker.cancel()  # type: ignore[union-attr]
    doomed_pool.terminate()  # the process "dies": its connections, and so its lock, are gone
    # PostgreSQL releases the lock once it notices the connection is gone: poll, with a deadline.
    deadline = asyncio.get_running_loop().time() + 10
    while not (closed := await recorder.recover()) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    assert [r.id for r in closed] == [ingest.id]
    got = closed[0]
    assert (got.state, got.end_reason, got.size) == ("interrupted", "crash", 3000)
    assert await stored(pool, ingest.id) == data[:3000]
    assert got.has_media and got.duration_ms and got.duration_ms > 0
    assert ("recording.interrupted", ingest.id) in [(k, b["Recording-ID"]) for k, b in recorder.events]  # type: ignore[attr-defined]


async def test_a_source_that_left_before_any_audio_gives_the_recording_back(recorder: Recorder) -> None:
    rec = await recorder.create(NewRecording(None, "again"))
    ingest = await recorder.begin(rec.id, origin="test")
    await recorder.cancel(ingest)  # e.g. the client hung up while its credentials were checked
    back = await recorder.get(rec.id)
    assert (back.state, back.blob_id, back.owner) == ("pending", None, None)
    second = await recorder.begin(rec.id, origin="test")  # the same credentials work again
    await second.write(b"\xff")
    done = await second.finish()
    assert done.state == "complete" and done.size == 1
