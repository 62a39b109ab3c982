"""The process's recordings: create, begin, flush on time, recover what a crash left open.

One ``Recorder`` per process (built in ``app.py``) owns every open ``Ingest`` (see ingest.py for
the API), one ticker that commits each ingest's buffer on time and keeps this instance's owner lock
and heartbeat, and the recovery that closes recordings whose writer died as ``interrupted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterable, Callable, Coroutine
from typing import Any, Literal

from media_mgr.errors import Conflict, InvalidRequest, NotFound
from media_mgr.recording.ingest import (
    EventPublisher,
    Ingest,
    NewRecording,
    RecordingEnded,
    RecordingLimits,
    StorageFailed,
)
from media_mgr.recording.meter import PcmFormat, summarize_stored
from media_mgr.store.errors import StoreUnavailable
from media_mgr.store.recordings import (
    Audio,
    DuplicateRecording,
    NotPending,
    Recording,
    RecordingStore,
)

log = logging.getLogger("media_mgr.recording")

HEARTBEAT_SECONDS = 1.0
FAILED_FLUSH_RETRY_SECONDS = 1.0
EVENT_TIMEOUT = 5.0


def event_body(rec: Recording) -> dict[str, Any]:
    """``recording.complete`` / ``recording.interrupted``, in the Kazoo envelope style."""
    return {
        "Event-Category": "recording",
        "Event-Name": rec.state,
        "Recording-ID": rec.id,
        "Account-ID": rec.account_id,
        "Name": rec.name,
        "Media-ID": rec.id if rec.has_media else None,
        "Media-Name": rec.media_name,
        "Content-Type": rec.content_type,
        "Duration-MS": rec.duration_ms,
        "Size": rec.size,
        "SHA256": rec.sha256,
        "End-Reason": rec.end_reason,
        "Origin": rec.origin,
    }


class Recorder:
    def __init__(
        self,
        store: RecordingStore,
        limits: RecordingLimits,
        *,
        publish: EventPublisher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.limits = limits
        self.publish = publish
        self.clock = clock
        self._lock = store.owner_lock()
        self._live: dict[str, Ingest] = {}
        self._unsettled: dict[str, Ingest] = {}
        self._busy: set[str] = set()  # ingests with a ticker-started flush or settle in flight
        self._recovering = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None

    @property
    def owner(self) -> int:
        """This instance's key in the ``owner`` column (and its advisory lock)."""
        return self._lock.key

    async def start(self) -> None:
        await self._lock.ensure()
        try:
            await self.recover()
        except StoreUnavailable as exc:
            log.warning("recording recovery failed; will retry", extra={"error": repr(exc)})
        self._ticker = asyncio.create_task(self._tick(), name="recorder-ticker")

    async def stop(self, timeout: float = 10.0) -> None:
        """Close every open recording as ``interrupted`` (audio committed first), then let go."""
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        closing = [i.abort("shutdown") for i in list(self._live.values())]
        closing += [i.settle() for i in list(self._unsettled.values())]
        if closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*closing, return_exceptions=True)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=EVENT_TIMEOUT)
        for task in list(self._tasks):
            task.cancel()
        await self._lock.release()

    # -- the API the edges use ------------------------------------------------------------------

    async def create(self, new: NewRecording) -> Recording:
        if new.fmt not in ("mp3", "wav"):
            raise InvalidRequest(f"format {new.fmt!r} is neither mp3 nor wav")
        try:
            return await self.store.create(
                new.recording_id or secrets.token_hex(16), new.account_id, new.name, new.fmt
            )
        except DuplicateRecording:
            raise Conflict(f"recording {new.recording_id} already exists") from None

    async def get(self, recording_id: str) -> Recording:
        got = await self.store.get(recording_id)
        if got is None:
            raise NotFound(f"no recording {recording_id}")
        return got

    async def find(
        self, account_id: str | None, state: str | None, limit: int, offset: int
    ) -> tuple[list[Recording], int]:
        return await self.store.find(account_id, state, limit, offset)

    async def begin(
        self, recording_id: str, *, origin: str, peer: str = "", pcm: PcmFormat | None = None
    ) -> Ingest:
        """Start writing a ``pending`` recording; ``RecordingEnded`` (409) if it started or ended."""
        if recording_id in self._live:
            raise RecordingEnded(f"recording {recording_id} is already being recorded")
        rec = await self.get(recording_id)
        if rec.format == "wav" and pcm is None:
            raise InvalidRequest("a WAV recording needs the PCM format of its audio")
        header = pcm.header() if rec.format == "wav" and pcm is not None else b""
        try:
            claimed = await self.store.claim(
                recording_id,
                self.owner,
                origin=origin,
                peer=peer,
                sample_rate=pcm.rate if pcm and rec.format == "wav" else None,
                channels=pcm.channels if pcm and rec.format == "wav" else None,
                header=header,
            )
        except NotPending as exc:
            raise RecordingEnded(f"recording {recording_id} is {exc.state}") from None
        if claimed is None:
            raise NotFound(f"no recording {recording_id}")
        ingest = Ingest(self, claimed, pcm if rec.format == "wav" else None)
        self._live[recording_id] = ingest
        log.info("recording started", extra={"recording_id": recording_id, "origin": origin, "peer": peer})
        return ingest

    async def begin_new(
        self, new: NewRecording, *, origin: str, peer: str = "", pcm: PcmFormat | None = None
    ) -> Ingest:
        rec = await self.create(new)
        return await self.begin(rec.id, origin=origin, peer=peer, pcm=pcm)

    async def store_file(
        self, recording_id: str, fmt: Literal["mp3", "wav"], audio: Audio, content: AsyncIterable[bytes]
    ) -> Recording:
        """A finished file for the recording at once (Kazoo's /store/ PUT); a repeat replaces it."""
        try:
            done = await self.store.store_content(recording_id, fmt, audio, content)
        except NotPending as exc:
            raise RecordingEnded(f"recording {recording_id} is being recorded right now") from exc
        if done is None:
            raise NotFound(f"no recording {recording_id}")
        await self.announce(done)
        return done

    async def cancel(self, ingest: Ingest) -> None:
        """Give a recording back (``pending``) when its source left before any audio: the same
        credentials can then start it again. With audio, it is closed as ``interrupted``."""
        if ingest.size > ingest.recording.size or ingest.closed:
            await ingest.abort("reset")
            return
        ingest.closed = True
        self.forget(ingest)
        await self.store.unclaim(ingest.id, self.owner)

    def live(self) -> list[Ingest]:
        return list(self._live.values())

    # -- called by Ingest -------------------------------------------------------------------------

    def forget(self, ingest: Ingest) -> None:
        for table in (self._live, self._unsettled):
            if table.get(ingest.id) is ingest:
                del table[ingest.id]

    def unsettled(self, ingest: Ingest) -> None:
        """The database would not take the end of it: the ticker keeps trying."""
        self.forget(ingest)
        self._unsettled[ingest.id] = ingest

    async def announce(self, rec: Recording) -> None:
        extra = {"recording_id": rec.id, "end_reason": rec.end_reason, "size": rec.size}
        log.info(f"recording {rec.state}", extra={**extra, "duration_ms": rec.duration_ms})
        if self.publish is not None:
            self._spawn(self._publish(f"recording.{rec.state}", event_body(rec)))

    async def _publish(self, routing_key: str, body: dict[str, Any]) -> None:
        assert self.publish is not None
        try:
            async with asyncio.timeout(EVENT_TIMEOUT):
                await self.publish(routing_key, body)
        except Exception as exc:  # an event must never break the recording it describes
            log.warning(
                "recording event not published", extra={"routing_key": routing_key, "error": repr(exc)}
            )

    # -- crash recovery ---------------------------------------------------------------------------

    async def recover(self) -> list[Recording]:
        """Close as ``interrupted`` the recordings whose writer is gone (its lock is free)."""
        closed: list[Recording] = []
        async with self._recovering:
            for owner in await self.store.stale_owners(self.owner, self.limits.recovery_grace):
                if not await self._lock.holder_is_gone(owner):
                    continue
                try:
                    for rec in await self.store.live_of(owner):
                        summary = await summarize_stored(self.store, rec)
                        done = await self.store.finalize(rec, "interrupted", "crash", summary, owner=None)
                        log.warning("recording cut off by a crash closed as interrupted",
                                    extra={"recording_id": rec.id, "size": done.size})  # fmt: skip
                        closed.append(done)
                        await self.announce(done)
                finally:
                    await self._lock.forget(owner)
        return closed

    # -- the ticker -------------------------------------------------------------------------------

    async def _tick(self) -> None:
        period = self.limits.flush_seconds / 4
        next_heartbeat = 0.0
        next_recovery = self.clock() + self.limits.recovery_grace
        while True:
            await asyncio.sleep(period)
            now = self.clock()
            for ingest in list(self._live.values()):
                if ingest.id not in self._busy and ingest.flush_due(now, FAILED_FLUSH_RETRY_SECONDS):
                    self._busy_spawn(ingest.id, self._flush(ingest))
            for ingest in list(self._unsettled.values()):
                if ingest.id not in self._busy:
                    self._busy_spawn(ingest.id, self._settle(ingest))
            if now >= next_heartbeat:
                next_heartbeat = now + HEARTBEAT_SECONDS
                await self._heartbeat()
            if now >= next_recovery and not self._recovering.locked():
                next_recovery = now + max(self.limits.recovery_grace, 1.0)
                self._spawn(self._recover_quietly())

    async def _flush(self, ingest: Ingest) -> None:
        with contextlib.suppress(RecordingEnded):
            await ingest.flush()

    async def _settle(self, ingest: Ingest) -> None:
        with contextlib.suppress(StorageFailed, RecordingEnded, StoreUnavailable):
            await ingest.settle()

    async def _heartbeat(self) -> None:
        try:
            await self._lock.ensure()
            if self._live:
                await self.store.heartbeat(self.owner)
        except StoreUnavailable as exc:
            log.debug("heartbeat failed", extra={"error": repr(exc)})

    async def _recover_quietly(self) -> None:
        try:
            await self.recover()
        except StoreUnavailable as exc:
            log.warning("recording recovery failed; will retry", extra={"error": repr(exc)})

    def _busy_spawn(self, key: str, coro: Coroutine[Any, Any, None]) -> None:
        self._busy.add(key)
        task = self._spawn(coro)
        task.add_done_callback(lambda _t: self._busy.discard(key))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
