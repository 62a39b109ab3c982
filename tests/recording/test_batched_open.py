"""Recordings opened in batches (``recording/opening.py``): many calls starting at once each get their
own recording, written as one would have been alone, and every refusal stays the one it was."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from io import BytesIO

import asyncpg
import pytest
from stored_chunks import stored

from media_mgr.errors import InvalidRequest, NotFound
from media_mgr.recording.config import RecorderConfig
from media_mgr.recording.ingest import NewRecording, RecordingEnded
from media_mgr.recording.meter import PcmFormat
from media_mgr.recording.recorder import Recorder
from media_mgr.store.blobs import BlobStore
from media_mgr.store.recordings import RecordingStore

FAST = RecorderConfig(flush_seconds=0.4, recovery_grace=0.0)


@pytest.fixture
async def recorder(pool: asyncpg.Pool) -> AsyncIterator[Recorder]:
    rec = Recorder(RecordingStore(pool, BlobStore(pool, 256 * 1024)), FAST)
    await rec.start()
    yield rec
    await rec.stop()


async def test_three_hundred_wav_recordings_opened_at_once_each_hold_their_own_audio(
    recorder: Recorder, pool: asyncpg.Pool, account_id: str
) -> None:
    n = 300  # more than one batch (256)
    pcm = PcmFormat(rate=8000, channels=1)
    ingests = await asyncio.gather(
        *(recorder.begin_new(NewRecording(account_id, f"call {i}.wav", fmt="wav"), origin="audio_stream",
                             peer=f"127.0.0.1:{1000 + i}", pcm=pcm) for i in range(n))
    )  # fmt: skip
    assert len({i.id for i in ingests}) == n
    rows = {
        r["id"]: r for r in await pool.fetch("SELECT * FROM recordings WHERE account_id = $1", account_id)
    }
    assert len(rows) == n
    for i, ingest in enumerate(ingests):
        row = rows[ingest.id]
        assert (row["state"], row["origin"], row["peer"], row["name"]) == (
            "recording", "audio_stream", f"127.0.0.1:{1000 + i}", f"call {i}.wav")  # fmt: skip
        assert (row["sample_rate"], row["channels"], row["owner"]) == (8000, 1, recorder.owner)
    for i, ingest in enumerate(ingests[:20]):
        assert await ingest.write(bytes([i]) * 3200)
    done = await asyncio.gather(*(i.finish() for i in ingests[:20]))
    for i, rec in enumerate(done):
        assert (rec.state, rec.duration_ms) == ("complete", 200)
        with wave.open(BytesIO(await stored(pool, rec.id))) as w:
            assert (w.getframerate(), w.getnchannels()) == (8000, 1)
            assert w.readframes(10_000) == bytes([i]) * 3200
    await asyncio.gather(*(i.abort("reset") for i in ingests[20:]))


async def test_claims_in_one_batch_each_get_their_own_answer(recorder: Recorder) -> None:
    pending_wav = await recorder.create(NewRecording(None, "a.wav", fmt="wav"))
    pending_mp3 = await recorder.create(NewRecording(None, "b.mp3"))
    needs_pcm = await recorder.create(NewRecording(None, "c.wav", fmt="wav"))
    taken = await recorder.create(NewRecording(None, "d.mp3"))
    first = await recorder.begin(taken.id, origin="test")
    pcm = PcmFormat(rate=16000, channels=2)
    results = await asyncio.gather(
        recorder.begin(pending_wav.id, origin="audio_stream", pcm=pcm),
        recorder.begin(pending_mp3.id, origin="shout", pcm=pcm),
        recorder.begin(needs_pcm.id, origin="audio_stream"),
        recorder.begin(taken.id, origin="test"),
        recorder.begin("0" * 32, origin="test"),
        return_exceptions=True,
    )
    wav, mp3, no_pcm, again, missing = results
    assert not isinstance(wav, BaseException) and not isinstance(mp3, BaseException)
    assert (wav.recording.state, wav.recording.sample_rate, wav.recording.channels) == ("recording", 16000, 2)
    assert wav.recording.size == 44  # the WAV header, stored as the blob's start
    assert (mp3.recording.sample_rate, mp3.recording.size, mp3.pcm) == (None, 0, None)
    assert isinstance(no_pcm, InvalidRequest)
    assert isinstance(again, RecordingEnded)
    assert isinstance(missing, NotFound)
    assert (await recorder.get(needs_pcm.id)).state == "pending"  # refused: nothing touched
    for ingest in (wav, mp3, first):
        await ingest.finish()


async def test_a_caller_that_stops_waiting_leaves_its_recording_pending_again(
    recorder: Recorder, pool: asyncpg.Pool
) -> None:
    rec = await recorder.create(NewRecording(None, "gone.mp3"))
    before = await pool.fetchval("SELECT coalesce(max(id), 0) FROM blobs")
    waiting = asyncio.create_task(recorder.begin(rec.id, origin="test"))
    await asyncio.sleep(0)  # queued in the lane
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    for _ in range(200):  # claimed meanwhile, then given back: its blob handed to the sweeper
        given_back = await pool.fetchval(
            "SELECT count(*) FROM blobs WHERE id > $1 AND orphaned_at IS NOT NULL", before
        )
        if given_back:
            break
        await asyncio.sleep(0.05)
    row = await pool.fetchrow("SELECT state, owner, blob_id FROM recordings WHERE id = $1", rec.id)
    assert row is not None
    assert (given_back, row["state"], row["owner"], row["blob_id"]) == (1, "pending", None, None)
    assert rec.id not in {i.id for i in recorder.live()}
    again = await recorder.begin(rec.id, origin="test")  # the same credentials start it again
    await again.finish()
