"""The recordings core against the real PostgreSQL: what is written is what is stored, on time,
closed once, limits honoured, and a crashed writer's recordings found and closed as interrupted."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest
from stored_chunks import stored

from media_mgr.config import Settings
from media_mgr.recording.config import RecorderConfig
from media_mgr.recording.ingest import NewRecording, RecordingEnded
from media_mgr.recording.meter import PcmFormat
from media_mgr.recording.recorder import Recorder
from media_mgr.store.blobs import BlobStore
from media_mgr.store.recordings import RecordingStore

from sounds import decode, raw_mp3

FAST = RecorderConfig(flush_seconds=0.4, recovery_grace=0.0)


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
    assert media is not None
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
    store = RecordingStore(pool, BlobStore(pool, 256 * 1024))
    async with Recorder(store, RecorderConfig(max_seconds=1.0)) as rec:
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
        assert done.duration_ms is not None
        assert 1000 - 72 < done.duration_ms <= 1000  # whole 72 ms frames, never past the limit
        body = await stored(pool, ingest.id)
        assert data.startswith(body) and len(decode(body)) * 1000 // 8000 == done.duration_ms


async def test_size_limit_keeps_exactly_the_limit(pool: asyncpg.Pool, tmp_path: Path) -> None:
    store = RecordingStore(pool, BlobStore(pool, 256 * 1024))
    async with Recorder(store, RecorderConfig(max_bytes=3000)) as rec:
        data = raw_mp3(tmp_path / "d.mp3")
        ingest = await rec.begin_new(NewRecording(None, "small"), origin="test")
        assert await ingest.write(data[:2000])
        assert not await ingest.write(data[2000:4000])
        done = await ingest.finish()
        assert (done.state, done.end_reason, done.size) == ("complete", "limit_size", 3000)
        assert await stored(pool, ingest.id) == data[:3000]


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
    await pool.execute(
        "UPDATE recordings SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", ingest.id
    )
    assert await recorder.recover() == []
    await doomed._work.stop()  # its ticker stops heartbeating, as in a crash
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


class HeartbeatFailsOnce(RecordingStore):
    """The real store, except that one heartbeat fails with an error the recorder does not expect."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool, BlobStore(pool, 256 * 1024))
        self.failed = asyncio.Event()

    async def heartbeat(self, owner: int) -> None:
        if not self.failed.is_set():
            self.failed.set()
            raise RuntimeError("unexpected heartbeat failure")
        await super().heartbeat(owner)


async def test_the_ticker_survives_an_unexpected_error_and_keeps_flushing_slow_audio(
    pool: asyncpg.Pool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = HeartbeatFailsOnce(pool)
    data = raw_mp3(tmp_path / "t.mp3", seconds=2.0)
    async with Recorder(store, FAST) as rec:
        ingest = await rec.begin_new(NewRecording(None, "slow"), origin="test")  # heartbeats need one
        await asyncio.wait_for(store.failed.wait(), timeout=10)
        await ingest.write(data[:2000])  # 1 s at 16 kbit/s: far below flush_bytes, only the ticker commits it
        deadline = asyncio.get_running_loop().time() + 10  # bounded; on time it takes under a second
        while await stored(pool, ingest.id) != data[:2000] and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert await stored(pool, ingest.id) == data[:2000]
        await ingest.finish()
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert [str(r.exc_info[1]) for r in failures if r.exc_info] == ["unexpected heartbeat failure"]  # once


async def test_leaving_the_recorder_closes_open_recordings_as_interrupted_with_their_audio(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    data = raw_mp3(tmp_path / "s.mp3")
    events: list[tuple[str, dict[str, Any]]] = []

    async def publish(key: str, body: Any) -> None:
        events.append((key, dict(body)))

    store = RecordingStore(pool, BlobStore(pool, 256 * 1024))
    async with Recorder(store, RecorderConfig(), publish=publish) as rec:
        ingest = await rec.begin_new(NewRecording(None, "cut"), origin="test")
        await ingest.write(data[:3000])  # still buffered: flush_seconds has not passed
    row = await pool.fetchrow(
        "SELECT state, end_reason, size, owner FROM recordings WHERE id = $1", ingest.id
    )
    assert row is not None and (row["state"], row["end_reason"], row["size"]) == (
        "interrupted",
        "shutdown",
        3000,
    )
    assert await stored(pool, ingest.id) == data[:3000]
    assert [(k, b["Recording-ID"]) for k, b in events] == [("recording.interrupted", ingest.id)]


def test_recorder_config_takes_the_recording_limits_from_settings() -> None:
    settings = Settings(
        database_url="postgresql://unused",
        limit_recording_seconds=7.5,
        limit_recording_bytes=123456,
        limit_recording_buffer_bytes=65536 * 3,
    )
    config = RecorderConfig.from_settings(settings)
    assert (config.max_seconds, config.max_bytes, config.buffer_bytes) == (7.5, 123456, 65536 * 3)
