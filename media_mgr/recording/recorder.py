"""The process's recordings: create, begin, flush on time, recover what a crash left open.

One ``Recorder`` per process (entered in ``app.py``: ``async with Recorder(...)``) owns every open
``Ingest`` (see ingest.py for the API), one ticker that commits each ingest's buffer on time and
keeps this instance's owner lock and heartbeat, and the recovery that closes recordings whose writer
died as ``interrupted``. Every task it starts runs in a ``TaskSet``: a failure is logged, never
silent, and the ticker itself survives any error of one tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine
from typing import Any, Literal

from media_mgr.errors import Conflict, InvalidRequest, NotFound
from media_mgr.lifecycle import Component
from media_mgr.recording.config import RecorderConfig
from media_mgr.recording.ingest import (
    EventPublisher,
    Ingest,
    NewRecording,
    RecordingEnded,
    StorageFailed,
    flush_together,
)
from media_mgr.recording.meter import PcmFormat, WavMeter, summarize_stored
from media_mgr.recording.models import Recording
from media_mgr.recording.opening import Opener
from media_mgr.store.errors import StoreUnavailable
from media_mgr.store.recordings import Audio, Claim, DuplicateRecording, NewOpen, NotPending, RecordingStore
from media_mgr.tasks import TaskSet

log = logging.getLogger("media_mgr.recording")

HEARTBEAT_SECONDS = 1.0
FAILED_FLUSH_RETRY_SECONDS = 1.0
FLUSH_BATCH = 256  # recordings committed in one transaction by the ticker
EVENT_TIMEOUT = 5.0
_HEARTBEAT = "~heartbeat"  # busy key of the heartbeat task (recording ids are hex)


class Recorder(Component):
    """The recording component: ``async with Recorder(store, config) as recorder`` starts it
    (owner lock, recovery, ticker); leaving the block stops it within ``config.stop_timeout``."""

    def __init__(
        self,
        store: RecordingStore,
        config: RecorderConfig,
        *,
        publish: EventPublisher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.config = config
        self.publish = publish
        self.clock = clock
        self._lock = store.owner_lock()
        self._live: dict[str, Ingest] = {}
        self._unsettled: dict[str, Ingest] = {}
        self._busy: set[str] = set()  # ingests (and the heartbeat) with a ticker-started task in flight
        self._recovering = asyncio.Lock()
        self._work = TaskSet("recorder", log)  # the ticker and what it starts
        self._events = TaskSet("recorder.events", log)
        self._publishing: set[asyncio.Task[None]] = set()  # awaited (to a deadline) on stop
        self._opening = TaskSet("recorder.opening", log)  # the lanes' batches in flight
        self._claiming: set[str] = set()  # ids a ``begin`` is claiming
        self._opener = Opener(self, self._opening)

    @property
    def owner(self) -> int:
        """This instance's key in the ``owner`` column (and its advisory lock)."""
        return self._lock.key

    async def start(self) -> None:
        await self._lock.ensure()
        try:
            await self.recover()
        except StoreUnavailable as exc:
            log.debug(
                "recording recovery failed; will retry", extra={"error": repr(exc)}
            )  # outage.py says it
        self._work.spawn(self._tick(), name="recorder.ticker")
        self._work.spawn(self._lock.keep(), name="recorder.owner_lock")

    async def stop(self, timeout: float | None = None) -> None:
        """Close every open recording as ``interrupted`` (audio committed first), send the events,
        then let go of the owner lock; all within ``timeout`` (``config.stop_timeout``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.config.stop_timeout if timeout is None else timeout)
        await self._opening.stop(timeout=max(deadline - loop.time(), 0.0))
        await self._work.stop(timeout=max(deadline - loop.time(), 0.0))
        closing = [i.abort("shutdown") for i in list(self._live.values())]
        closing += [i.settle() for i in list(self._unsettled.values())]
        if closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await asyncio.gather(*closing, return_exceptions=True)
        if self._publishing:
            await asyncio.wait(list(self._publishing), timeout=max(deadline - loop.time(), 0.0))
        await self._events.stop(timeout=max(deadline - loop.time(), 0.0))
        await self._lock.release()

    # -- the API the edges use ------------------------------------------------------------------

    async def create(self, new: NewRecording) -> Recording:
        if new.fmt not in ("mp3", "wav"):
            raise InvalidRequest(f"format {new.fmt!r} is neither mp3 nor wav")
        try:
            row = await self.store.create(
                new.recording_id or secrets.token_hex(16), new.account_id, new.name, new.fmt
            )
            return Recording.of(row)
        except DuplicateRecording:
            raise Conflict(f"id {new.recording_id} already names a recording or media") from None

    async def get(self, recording_id: str) -> Recording:
        got = await self.store.get(recording_id)
        if got is None:
            raise NotFound(f"no recording {recording_id}")
        return Recording.of(got)

    async def find(
        self, account_id: str | None, state: str | None, limit: int, offset: int
    ) -> tuple[list[Recording], int]:
        rows, total = await self.store.find(account_id, state, limit, offset)
        return [Recording.of(r) for r in rows], total

    async def begin(
        self, recording_id: str, *, origin: str, peer: str = "", pcm: PcmFormat | None = None
    ) -> Ingest:
        """Start writing a ``pending`` recording; ``RecordingEnded`` (409) if it started or ended.

        Claimed in a batch with the others asked meanwhile: one statement (``store.claim``)."""
        if recording_id in self._live or recording_id in self._claiming:
            raise RecordingEnded(f"recording {recording_id} is already being recorded")
        claim = Claim(recording_id, origin, peer, pcm.rate if pcm else None, pcm.channels if pcm else None,
                      pcm.header() if pcm else b"", pcm is not None)  # fmt: skip
        self._claiming.add(recording_id)
        try:
            return await self._opener.claims.submit((claim, pcm))
        finally:
            self._claiming.discard(recording_id)

    async def begin_new(
        self, new: NewRecording, *, origin: str, peer: str = "", pcm: PcmFormat | None = None
    ) -> Ingest:
        """A new recording, being written at once. Without a chosen id it is opened in a batch with
        the others asked meanwhile: one statement (``store.open_new``), whatever their number."""
        if new.recording_id is not None:  # the id's check against a concurrent creation needs its lock
            rec = await self.create(new)
            return await self.begin(rec.id, origin=origin, peer=peer, pcm=pcm)
        if new.fmt not in ("mp3", "wav"):
            raise InvalidRequest(f"format {new.fmt!r} is neither mp3 nor wav")
        if new.fmt == "wav" and pcm is None:
            raise InvalidRequest("a WAV recording needs the PCM format of its audio")
        wav = pcm if new.fmt == "wav" else None
        item = NewOpen(secrets.token_hex(16), new.account_id, new.name, new.fmt, origin, peer,
                       wav.rate if wav else None, wav.channels if wav else None,
                       wav.header() if wav else b"")  # fmt: skip
        return await self._opener.opens.submit((item, wav))

    def started(self, rec: Recording, pcm: PcmFormat | None) -> Ingest:
        """An opened recording, tracked from now on (``Opener``)."""
        ingest = Ingest(self, rec, pcm)
        self._live[rec.id] = ingest
        log.info("recording started", extra={"recording_id": rec.id, "origin": rec.origin, "peer": rec.peer})
        return ingest

    def unwanted(self, ingest: Ingest) -> None:
        """Opened for a caller that stopped waiting: given back (``pending``), as a source that
        left before sending anything."""
        with contextlib.suppress(RuntimeError):  # stopping: ``stop`` closes what is live
            self._work.spawn(self._give_back(ingest), name="recorder.give_back")

    async def _give_back(self, ingest: Ingest) -> None:
        with contextlib.suppress(StoreUnavailable, StorageFailed, RecordingEnded):
            await self.cancel(ingest)

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
        stored = Recording.of(done)
        await self.announce(stored)
        return stored

    async def cancel(self, ingest: Ingest) -> None:
        """Give a recording back (``pending``) when its source left before any audio: the same
        credentials can then start it again. With audio, it is closed as ``interrupted``."""
        if ingest.size > ingest.recording.size or ingest.closed:
            await ingest.abort("reset")
            return
        ingest.closed = True
        self.forget(ingest)
        await self.store.unclaim(ingest.id, self.owner)

    async def hand_off(self, ingest: Ingest) -> None:
        """Commit what ``ingest`` holds, for another instance to continue the recording once the
        owner moved (``store.audio_stream_sessions.hand_over``); then call :meth:`let_go`."""
        if not await ingest.flush():
            raise StorageFailed(f"could not commit recording {ingest.id} before handing it over")

    def let_go(self, ingest: Ingest) -> None:
        """Stop tracking an ingest another instance now owns: nothing more is written nor closed here."""
        ingest.closed = True
        self.forget(ingest)

    async def adopt(self, recording_id: str, pcm: PcmFormat) -> Ingest:
        """Continue a WAV recording another instance handed over (its owner is already ours): new
        audio is appended after what is stored; closing it works as if it had begun here."""
        row = await self.store.get(recording_id)
        if row is None or row.state != "recording" or row.owner != self.owner:
            raise RecordingEnded(f"recording {recording_id} was not handed over to this instance")
        rec = Recording.of(row)
        ingest = Ingest(self, rec, pcm)
        if isinstance(ingest.meter, WavMeter):
            ingest.meter.data_bytes = max(rec.size - len(pcm.header()), 0)
        self._live[recording_id] = ingest
        log.info("recording continued from another instance", extra={"recording_id": recording_id})
        return ingest

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
        if self.publish is None:
            return
        try:
            task = self._events.spawn(
                self._publish(f"recording.{rec.state}", rec.event_body()), name="recorder.event"
            )
        except RuntimeError:  # closed after the recorder stopped: the recording itself is stored
            log.warning("recording event not published: the recorder has stopped", extra=extra)
            return
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

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
        """Close as ``interrupted`` the recordings whose writer is gone: its heartbeat stopped more
        than ``recovery_grace`` ago, counted from the database's start if that is later (a restart
        drops every lock, and live owners need a moment to take theirs again), AND its lock is
        free. The key is probed under the lock and the rows read again, so a recording is closed
        by one survivor, once."""
        closed: list[Recording] = []
        async with self._recovering:
            for owner in await self.store.stale_owners(self.owner, self.config.recovery_grace):
                closed += await self._close_if_gone(owner, None) or []
        return closed

    async def take_over(self, owner: int, decide: Callable[[], Awaitable[bool]]) -> list[Recording] | None:
        """For the fleet: if ``owner``'s lock is free and ``decide()`` (called while this instance
        holds that lock, so the owner cannot come back meanwhile) says so, close its recordings.
        None when the owner is alive or ``decide`` said no."""
        async with self._recovering:
            return await self._close_if_gone(owner, decide)

    async def _close_if_gone(
        self, owner: int, decide: Callable[[], Awaitable[bool]] | None
    ) -> list[Recording] | None:
        if not await self._lock.holder_is_gone(owner):
            return None
        closed: list[Recording] = []
        try:
            if decide is not None and not await decide():
                return None
            for rec in await self.store.live_of(owner):
                summary = await summarize_stored(self.store, rec)
                row = await self.store.finalize(rec, "interrupted", "crash", summary, owner=None)
                done = Recording.of(row)
                log.warning("recording cut off by a crash closed as interrupted",
                            extra={"recording_id": rec.id, "size": done.size})  # fmt: skip
                closed.append(done)
                await self.announce(done)
        finally:
            await self._lock.forget(owner)
        return closed

    # -- the ticker -------------------------------------------------------------------------------

    async def _tick(self) -> None:
        """Every quarter of ``flush_seconds``: start what is due. It awaits no database call itself,
        and an error in one tick is logged (once, until a tick works again) and ticking goes on:
        a dead ticker would leave slow recordings flushed only every ``flush_bytes``."""
        period = self.config.flush_seconds / 4
        failing = False
        next_heartbeat = 0.0
        next_recovery = self.clock() + self.config.recovery_grace
        while True:
            await asyncio.sleep(period)
            now = self.clock()
            try:
                self._start_due_flushes(now)
                if now >= next_heartbeat:
                    next_heartbeat = now + HEARTBEAT_SECONDS
                    self._busy_spawn(_HEARTBEAT, self._heartbeat())
                if now >= next_recovery and not self._recovering.locked():
                    next_recovery = now + max(self.config.recovery_grace, 1.0)
                    self._work.spawn(self._recover_quietly(), name="recorder.recovery")
            except Exception:
                if not failing:
                    log.exception("recorder tick failed; ticking on")
                failing = True
            else:
                if failing:
                    log.info("recorder tick works again")
                failing = False

    def _start_due_flushes(self, now: float) -> None:
        """What is due is committed in batches, one transaction each (see ``flush_together``)."""
        retry = FAILED_FLUSH_RETRY_SECONDS
        due = [i for i in list(self._live.values()) if i.id not in self._busy and i.flush_due(now, retry)]
        for start in range(0, len(due), FLUSH_BATCH):
            batch = due[start : start + FLUSH_BATCH]
            self._busy_spawn_all([ingest.id for ingest in batch], self._flush(batch))
        for ingest in list(self._unsettled.values()):
            if ingest.id not in self._busy:
                self._busy_spawn(ingest.id, self._settle(ingest))

    async def _flush(self, batch: list[Ingest]) -> None:
        await flush_together(batch)

    async def _settle(self, ingest: Ingest) -> None:
        with contextlib.suppress(StorageFailed, RecordingEnded, StoreUnavailable):
            await ingest.settle()

    async def _heartbeat(self) -> None:
        try:
            if self._live or self._unsettled:  # an unsettled row is still ours: keep it alive
                await self.store.heartbeat(self.owner)
        except StoreUnavailable as exc:
            log.debug("heartbeat failed", extra={"error": repr(exc)})

    async def _recover_quietly(self) -> None:
        try:
            await self.recover()
        except StoreUnavailable as exc:
            log.debug(
                "recording recovery failed; will retry", extra={"error": repr(exc)}
            )  # outage.py says it

    def _busy_spawn(self, key: str, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` unless a task for ``key`` is still in flight (a failure is logged by the set)."""
        self._busy_spawn_all([key], coro)

    def _busy_spawn_all(self, keys: list[str], coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` with every key in ``keys`` busy until it ends."""
        task = self._work.spawn(
            coro, name=f"recorder.{keys[0]}" + (f"+{len(keys) - 1}" if len(keys) > 1 else "")
        )
        self._busy.update(keys)
        task.add_done_callback(lambda _t: self._busy.difference_update(keys))
