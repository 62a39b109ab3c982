"""This instance's audio_stream sessions in the fleet's table, and the other instances' read from it.

A session's row is written when it starts, changes state (active, detached) or ends, never per
frame: ``changed`` / ``ended`` only mark it, and one writer task puts every marked row in the table
(coalesced, so a flapping socket costs one write per pass) and refreshes all of this instance's
rows in one statement every ``REFRESH_SECONDS``. A database that fails keeps the marks for the next
pass. Rows of a session handed over to another instance are that instance's from the moment the
move commits, and this one's writes cannot touch them (``store.audio_stream_sessions``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from media_mgr.audio_stream.session import Session, SessionState
from media_mgr.errors import Conflict
from media_mgr.fleet.peers import Peers
from media_mgr.isotime import iso
from media_mgr.store.audio_stream_sessions import SessionRow, SessionStore
from media_mgr.store.errors import StoreUnavailable
from media_mgr.store.instances import InstanceRow
from media_mgr.tasks import TaskSet

log = logging.getLogger("media_mgr.audio_stream")

REFRESH_SECONDS = 5.0
RETRY_SECONDS = 1.0


class Directory:
    def __init__(self, store: SessionStore, peers: Peers) -> None:
        self.store = store
        self.peers = peers
        self.me = peers.me
        self._dirty: dict[str, Session | None] = {}  # None: delete the row
        self._wake = asyncio.Event()
        self._tasks = TaskSet("audio_stream.directory", log)

    def start(self) -> None:
        self._tasks.spawn(self._run(), name="audio_stream.directory")

    async def close(self) -> None:
        """Write what is marked (the ended sessions' deletions), then stop."""
        await self._tasks.stop()
        with contextlib.suppress(StoreUnavailable):
            await self._write()

    # -- marks -------------------------------------------------------------------------------------

    def changed(self, session: Session) -> None:
        if not session.ending:
            self._mark(session.id, session)

    def ended(self, session: Session) -> None:
        self._mark(session.id, None)

    def moved(self, session: Session) -> None:
        """Handed over: the row is the other instance's now; nothing is written for it here."""
        self._dirty.pop(session.id, None)

    def _mark(self, session_id: str, session: Session | None) -> None:
        self._dirty[session_id] = session
        self._wake.set()

    # -- the writer --------------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_refresh = loop.time() + REFRESH_SECONDS
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_refresh - loop.time())):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._write()
                if loop.time() >= next_refresh:
                    next_refresh = loop.time() + REFRESH_SECONDS
                    await self.store.refresh(self.me)
            except StoreUnavailable as exc:
                log.debug("audio_stream session rows not written; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(RETRY_SECONDS)
                self._wake.set()

    async def _write(self) -> None:
        """Each mark is taken before its row is written: a session marked again while the write is
        in flight (opening -> active) is written again. (Taken after, the second mark was lost: it
        is the same session object, so it looked like the first, and the row said ``opening`` for
        as long as the session lived: 2 of 200 sessions opened together.)"""
        while self._dirty:
            session_id = next(iter(self._dirty))
            session = self._dirty.pop(session_id)
            try:
                if session is None:
                    await self.store.delete(session_id, self.me)
                elif not session.ending:  # ending: ``ended`` marks it; moving: the row moves with it
                    await self.store.upsert(self.row_of(session))
            except BaseException:
                self._dirty.setdefault(session_id, session)  # for the next pass, unless marked anew
                raise

    def row_of(self, session: Session) -> SessionRow:
        state = session.state if session.state is not SessionState.ENDED else SessionState.DETACHED
        capture = session.capture
        return SessionRow(
            id=session.id, instance_id=self.me, rejoin_key=session.key,
            metadata=session.metadata.text if session.metadata else None, dialect=session.dialect.name,
            state=state.value, stream_id=session.stream_id, call_id=session.call_id,
            recording_id=session.sink.id if session.sink else None, path=session.path, peer=session.peer,
            rate=session.fmt.rate if session.fmt else None,
            recorded_frames=capture.recorded_frames if capture else 0,
            clock=capture.resume_state(time.time() - session.clock()) if capture else None,
        )  # fmt: skip

    # -- the others' sessions ----------------------------------------------------------------------

    async def owner_of(self, ref: str) -> str | None:
        """The live instance (not this one) holding the session ``ref`` names, if any. A ref no
        session could have (a stream or call id is printable and at most 256 characters) is not
        looked up: a NUL or a lone surrogate would not even reach the database as text."""
        if not (0 < len(ref) <= 256 and ref.isprintable()):
            return None
        rows = await self.store.named(ref, self.me)
        if len(rows) > 1:
            raise Conflict(f"{len(rows)} live streams match {ref!r}; use a session_id from GET /v1/streams")
        return rows[0].instance_id if rows else None

    async def forward(self, instance_id: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """The request, as the instance holding the session answers it (status and JSON body)."""
        answer = await self.peers.call(instance_id, method, path, json=body)
        return answer.status, answer.body

    async def elsewhere(self) -> list[dict[str, Any]]:
        """The sessions every other live instance holds, as ``GET /v1/streams`` lists them (figures
        as of their holder's last write; ``/v1/streams/{id}`` answers the live ones)."""
        return [
            {"id": r.id, "kind": "audio_stream", "media_id": r.recording_id or "", "client": r.peer,
             "started_at": iso(r.started_at), "bytes": 0, "session_id": r.id, "state": r.state,
             "stream_id": r.stream_id, "call_id": r.call_id, "path": r.path, "recording_id": r.recording_id,
             "recorded_ms": r.recorded_frames * 1000 // r.rate if r.rate else 0, "instance_id": r.instance_id,
             "updated_at": iso(r.updated_at)}
            for r in await self.store.elsewhere(self.me)
        ]  # fmt: skip

    async def instance_gone(self, instance: InstanceRow) -> None:
        """``Fleet.on_gone``: the dead instance's sessions are gone with it (its recordings were closed
        as interrupted); their rows go, so no reconnect or control is sent there."""
        deleted = await self.store.delete_of(instance.id)
        if deleted:
            log.warning("audio_stream sessions of an instance declared gone removed",
                        extra={"gone_instance": instance.id, "sessions": deleted})  # fmt: skip
