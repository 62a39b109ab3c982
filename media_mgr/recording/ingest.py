"""Recordings written while the audio arrives: in PostgreSQL within a second, closed exactly once.

The API, shared by the SHOUT server (MP3 bytes as a source sends them) and the mod_audio_stream
endpoint (PCM, stored as a WAV whose header sizes are fixed at the end)::

    # media_mgr.recording.recorder.Recorder, one per process, entered in app.py:
    async with Recorder(RecordingStore(pool, blobs), RecorderConfig.from_settings(settings),
                        publish=amqp.publish_event) as recorder:   # owner lock, crash recovery
        rec = await recorder.create(NewRecording(account_id=None, name="call.mp3"))   # "pending"
        ingest = await recorder.begin(rec.id, origin="shout", peer="10.0.0.5:41000")  # "recording"
        # WAV: await recorder.begin_new(NewRecording(None, "call.wav", fmt="wav"), origin="audio_stream",
        #                               peer=..., pcm=PcmFormat(rate=16000, channels=1))
        more = await ingest.write(data)   # False: a limit was reached (what fit is kept); call finish()
        rec = await ingest.finish()       # -> "complete" (or "interrupted" for a reason that is a fault)
        rec = await ingest.abort("reset") # -> "interrupted", the audio kept
    # leaving the block: recordings still open -> "interrupted" ("shutdown"), tasks stopped

``write`` only appends to a bounded buffer; the recorder's ticker commits each ingest's buffer once
its oldest byte is ``flush_seconds / 2`` old, so a crash loses at most about a second. ``write``
awaits (the caller stops reading its peer) only when the buffer is full because the database is
slow or away, and raises ``StorageFailed`` when it stayed away for ``store_timeout``. Both end
calls return the closed ``Recording`` (a media record with the same id exists when it holds audio)
and publish ``recording.complete`` / ``recording.interrupted`` through ``publish`` when given.

An ingest knows its recorder only as an :class:`IngestHost`, so this module does not import the
recorder (which imports it).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, Protocol

from media_mgr.errors import Conflict, Unavailable
from media_mgr.recording.config import RecorderConfig
from media_mgr.recording.meter import Meter, PcmFormat, meter_for, summarize_stored
from media_mgr.recording.models import Recording
from media_mgr.store.errors import StoreUnavailable
from media_mgr.store.recordings import Appended, LostOwnership, RecordingStore, Summary

log = logging.getLogger("media_mgr.recording")

EventPublisher = Callable[[str, Mapping[str, Any]], Awaitable[object]]
COMPLETE_REASONS = frozenset({"eof", "limit_duration", "limit_size"})


@dataclass(frozen=True)
class NewRecording:
    account_id: str | None
    name: str
    fmt: Literal["mp3", "wav"] = "mp3"
    recording_id: str | None = None


class RecordingEnded(Conflict):
    """The recording is closed: nothing more can be written to it."""


class StorageFailed(Unavailable):
    """The database did not take the audio for ``store_timeout``; the recording is interrupted."""


class IngestHost(Protocol):
    """What an ingest needs from the recorder that owns it."""

    @property
    def config(self) -> RecorderConfig: ...

    @property
    def store(self) -> RecordingStore: ...

    @property
    def owner(self) -> int:
        """This instance's key in the ``owner`` column."""

    def clock(self) -> float: ...

    def forget(self, ingest: Ingest) -> None:
        """The ingest is closed (or was closed by another instance): stop tracking it."""

    def unsettled(self, ingest: Ingest) -> None:
        """The database would not take the end of it: keep trying in the background."""

    async def announce(self, rec: Recording) -> None:
        """Log and publish the closed recording's event."""


class Ingest:
    """One recording being written. Use from one task; the recorder's ticker flushes beside it."""

    def __init__(self, host: IngestHost, recording: Recording, pcm: PcmFormat | None) -> None:
        assert recording.blob_id is not None
        self.host = host
        self.recording = recording
        self.pcm = pcm
        limits = host.config
        self.meter: Meter = meter_for(recording, pcm, int(limits.max_seconds * 1000))
        self.size = recording.size  # bytes accepted (a WAV header is already stored)
        self.stored = recording.size  # bytes committed
        self.limit_reason: str | None = None
        self.end_reason = "eof"
        self.closed = False
        self.started = time.monotonic()
        self._digest = hashlib.sha256()
        self._pending = bytearray()
        self._pending_since: float | None = None
        self._failing_since: float | None = None
        self._last_attempt = 0.0
        self._flush_lock = asyncio.Lock()
        self._result: Recording | None = None

    @property
    def id(self) -> str:
        return self.recording.id

    @property
    def duration_ms(self) -> int:
        return self.meter.duration_ms

    @property
    def buffered(self) -> int:
        """Bytes accepted but not committed yet (bounded by ``buffer_bytes``)."""
        return len(self._pending)

    async def write(self, data: bytes | bytearray | memoryview) -> bool:
        """Accept audio; False once a limit is reached (the part that fits is kept)."""
        if self.closed or self.limit_reason is not None:
            raise RecordingEnded(f"recording {self.id} is closed")
        limits = self.host.config
        view = memoryview(data)
        take = self.meter.take(view)
        if self.meter.full:
            self.limit_reason = "limit_duration"
        room = limits.max_bytes - self.size
        if take > room:
            take, self.limit_reason = room, "limit_size"
        if take:
            piece = view[:take]
            if self.recording.format == "mp3":
                self._digest.update(piece)
            if not self._pending:
                self._pending_since = self.host.clock()
            self._pending += piece
            self.size += take
        if len(self._pending) >= limits.flush_bytes:
            await self.flush()
        while len(self._pending) >= limits.buffer_bytes:
            self._check_failing()
            if not await self.flush():
                await asyncio.sleep(min(0.5, limits.flush_seconds))
        return self.limit_reason is None

    def flush_due(self, now: float, retry_seconds: float) -> bool:
        """Whether the ticker should commit now: the oldest buffered byte is half the budget old
        (and, while the database fails, the last try was ``retry_seconds`` ago)."""
        since = self._pending_since
        if since is None or now - since < self.host.config.flush_seconds / 2:
            return False
        return self._failing_since is None or now - self._last_attempt >= retry_seconds

    async def flush(self) -> bool:
        """Commit what is buffered; False (buffer kept, retried later) if the database failed."""
        async with self._flush_lock:
            if not self._pending:
                return True
            data = self._start_flush()
            try:
                await self.host.store.append(
                    self.id, self.host.owner, self.recording.blob_id or 0, self.stored, data
                )
            except LostOwnership:
                self._lost()
            except StoreUnavailable as exc:
                self._flush_failed(exc)
                return False
            self._flushed(len(data))
            return True

    def _start_flush(self) -> bytes:
        self._last_attempt = self.host.clock()
        return bytes(self._pending)

    def _lost(self) -> NoReturn:
        self.closed = True
        self.host.forget(self)
        raise RecordingEnded(f"recording {self.id} was closed by another instance") from None

    def _flush_failed(self, exc: Exception) -> None:
        if self._failing_since is None:
            self._failing_since = self.host.clock()
            log.warning("recording flush failed; keeping the audio and retrying",
                        extra={"recording_id": self.id, "error": repr(exc)})  # fmt: skip

    def _flushed(self, size: int) -> None:
        del self._pending[:size]
        self.stored += size
        self._pending_since = self.host.clock() if self._pending else None
        if self._failing_since is not None:
            log.info("recording flush works again", extra={"recording_id": self.id})
            self._failing_since = None

    def _check_failing(self) -> None:
        since = self._failing_since
        if since is not None and self.host.clock() - since > self.host.config.store_timeout:
            raise StorageFailed(
                f"the database has not taken recording {self.id} for {self.host.config.store_timeout:g} s"
            )

    async def finish(self, reason: str = "eof") -> Recording:
        """Close it: ``complete`` for eof or a limit, ``interrupted`` for any other reason."""
        if self._result is not None:
            return self._result
        if not self.closed:
            self.closed = True
            self.meter.end()
            self.end_reason = self.limit_reason or reason
        return await self.settle()

    async def abort(self, reason: str) -> Recording:
        """Close it as ``interrupted`` (the connection broke, the server stops...); audio kept."""
        if not self.closed:
            self.closed = True
            self.meter.end()
            self.end_reason = reason
        return await self.settle()

    async def settle(self) -> Recording:
        """Commit the rest and close the row; raises ``StorageFailed`` (the recorder retries later)."""
        if self._result is not None:
            return self._result
        limits = self.host.config
        deadline = self.host.clock() + limits.store_timeout
        while not await self.flush():
            if self.host.clock() > deadline:
                self.host.unsettled(self)
                raise StorageFailed(f"could not store the end of recording {self.id}")
            await asyncio.sleep(min(0.5, limits.flush_seconds))
        state: Literal["complete", "interrupted"] = (
            "complete" if self.end_reason in COMPLETE_REASONS else "interrupted"
        )
        current = dataclasses.replace(self.recording, size=self.size)
        try:
            if self.recording.format == "wav":
                summary = await summarize_stored(self.host.store, current)
            else:
                m = self.meter
                digest = self._digest.hexdigest()
                summary = Summary(self.size, digest, m.duration_ms, m.sample_rate, m.channels, m.codec)
            result = Recording.of(
                await self.host.store.finalize(
                    current, state, self.end_reason, summary, owner=self.host.owner
                )
            )
        except LostOwnership:
            self.host.forget(self)
            raise
        except StoreUnavailable as exc:
            self.host.unsettled(self)
            raise StorageFailed(f"could not close recording {self.id}: {exc!r}") from exc
        self._result = result
        self.host.forget(self)
        await self.host.announce(result)
        return result


async def flush_together(ingests: list[Ingest]) -> None:
    """Commit the buffers of several ingests of one recorder in one transaction: one commit for
    all (2000 SHOUT sources flushing each on its own were 3000 commits a second, and the
    database fell so far behind that new sources timed out waiting to begin). One that is
    flushing already, or has nothing buffered, is left for the next tick."""
    taken: list[tuple[Ingest, bytes]] = []
    async with contextlib.AsyncExitStack() as held:
        for ingest in ingests:
            if ingest.closed or not ingest._pending or ingest._flush_lock.locked():
                continue
            await held.enter_async_context(ingest._flush_lock)  # free: taken without waiting
            taken.append((ingest, ingest._start_flush()))
        if not taken:
            return
        host = taken[0][0].host
        items = [Appended(i.id, i.recording.blob_id or 0, i.stored, data) for i, data in taken]
        try:
            lost = await host.store.append_many(host.owner, items)
        except StoreUnavailable as exc:
            for ingest, _ in taken:
                ingest._flush_failed(exc)
            return
        for ingest, data in taken:
            if ingest.id in lost:
                with contextlib.suppress(RecordingEnded):
                    ingest._lost()
            else:
                ingest._flushed(len(data))
