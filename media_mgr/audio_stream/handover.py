"""A module's reconnect that lands on another instance continues the same session and recording.

The instance the module reconnected to (the *taker*, B) finds the session's row in the fleet's table
by the rejoin key (``registry.rejoin``'s rule: voipbit's URL and ``stream_id``, the binary dialect's
URL and metadata frame) and asks its holder (the *giver*, A) over its internal port
(``POST /internal/audio-stream/handover``, fleet token only). The giver applies the same rule as a
local rejoin (detached, or attached but silent for voipbit), commits the audio it holds, and in one
transaction moves the session's row and the recording's owner to the taker
(``SessionStore.hand_over``); then it drops the session without closing anything and answers with
where the stream stands: the format, the dialect's media clock (voipbit's chunk base, the binary
byte count), each track clock's gaps and lateness floor (arrival times carried on the wall clock,
so instances on machines whose clocks agree, as NTP keeps them, measure the same lateness), and the
recording position. The taker adopts the recording and builds the session from that: the next
chunk is placed exactly where the giver would have placed it, and the reconnect's gap is told from
a stall by the same floor, so it becomes silence where it belongs, as it does locally.

A giver that cannot be reached (it was killed and not declared gone yet) or that refuses leaves the
taker to start a new session, whose recording is new; the old one is closed as ``interrupted``
(``crash``) by the survivor that declares the giver gone, which also deletes its rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from media_mgr.audio_stream.capture.pipeline import Capture
from media_mgr.audio_stream.catch_up import CatchUp
from media_mgr.audio_stream.dialects.base import Dialect, Join
from media_mgr.audio_stream.events import Metadata
from media_mgr.audio_stream.formats import StreamFormat
from media_mgr.audio_stream.registry import TAKEOVER_SILENCE, Registry
from media_mgr.audio_stream.session import Session, SessionConfig, SessionState
from media_mgr.errors import Conflict, NotFound
from media_mgr.fleet.peers import Peers, PeerUnavailable
from media_mgr.recording.ingest import Ingest
from media_mgr.recording.meter import PcmFormat
from media_mgr.recording.recorder import Recorder
from media_mgr.store.audio_stream_sessions import SessionStore

log = logging.getLogger("media_mgr.audio_stream")

HANDOVER_PATH = "/internal/audio-stream/handover"


class HandoverHost(Protocol):
    """What the hand-over needs from the audio_stream service."""

    registry: Registry
    recorder: Recorder
    clock: Callable[[], float]

    def new_session(
        self, key: str, dialect: Dialect, *, session_id: str | None = None, **kwargs: Any
    ) -> Session:
        """A session registered here (listed, in the table)."""

    def drop(self, session: Session) -> None:
        """Forget a session handed over: nothing closed, no row written."""


class Handover:
    def __init__(self, host: HandoverHost, store: SessionStore, peers: Peers, config: SessionConfig) -> None:
        self.host = host
        self.store = store
        self.peers = peers
        self.config = config

    # -- the taker ---------------------------------------------------------------------------------

    async def take(
        self, join: Join, dialect: Dialect, *, peer: str, subprotocol: str | None
    ) -> Session | None:
        """The session another instance holds for this reconnect, moved here; None: start a new one."""
        me = self.peers.me
        row = await self.store.rejoinable(join.key, join.metadata, me)
        if row is None:
            return None
        ask = {"session_id": row.id, "key": join.key, "metadata": join.metadata, "takeover": join.takeover,
               "instance_id": me, "owner": self.host.recorder.owner}  # fmt: skip
        extra = {"session": row.id, "holder": row.instance_id}
        try:
            answer = await self.peers.call(row.instance_id, "POST", HANDOVER_PATH, json=ask)
        except PeerUnavailable as exc:
            log.warning("audio_stream reconnect: the instance holding its session did not answer; "
                        "starting a new session", extra={**extra, "error": exc.detail})  # fmt: skip
            return None
        if answer.status != 200:
            log.info("audio_stream reconnect: its session was not handed over; starting a new one",
                     extra={**extra, "status": answer.status, "answer": str(answer.body)[:200]})  # fmt: skip
            return None
        try:
            session = await self._restore(answer.body, join, dialect, peer=peer, subprotocol=subprotocol)
        except Exception:  # a fault of ours: the module's call goes on in a new recording
            log.exception(
                "audio_stream session handed over but not restored; starting a new one", extra=extra
            )
            return None
        log.info("audio_stream reconnect continues a session moved from another instance",
                 extra={**extra, "recording_id": session.sink.id if session.sink else None})  # fmt: skip
        return session

    async def _restore(
        self, state: dict[str, Any], join: Join, dialect: Dialect, *, peer: str, subprotocol: str | None
    ) -> Session:
        f = state["format"]
        fmt = StreamFormat(f["dialect"], f["encoding"], f["rate"], tuple(f["tracks"]),
                           tuple(f["track_channels"]), f["learnt_from"])  # fmt: skip
        dialect.resume(state["dialect"])
        ingest = await self.host.recorder.adopt(state["recording_id"], PcmFormat(fmt.rate, fmt.channels))
        try:
            return self._session(state, fmt, ingest, join, dialect, peer=peer, subprotocol=subprotocol)
        except Exception:  # the recording and the row are ours now: close the one, delete the other
            half = self.host.registry.get(state["session_id"])
            if half is not None:
                self.host.drop(half)
            await ingest.abort("reset")
            await self.store.delete(state["session_id"], self.peers.me)
            raise

    def _session(
        self, state: dict[str, Any], fmt: StreamFormat, ingest: Ingest, join: Join, dialect: Dialect, *,
        peer: str, subprotocol: str | None,
    ) -> Session:  # fmt: skip
        session = self.host.new_session(
            join.key, dialect, session_id=state["session_id"], path=state["path"], peer=peer,
            account_id=state["account_id"], subprotocol=subprotocol, recording_id=state["recording_id"],
        )  # fmt: skip
        session.call_id, session.stream_id = state["call_id"], state["stream_id"]
        session.extra_headers = state["extra_headers"]
        if state["metadata"] is not None:
            session.metadata = Metadata(**state["metadata"])
        session.stats.reconnects = state["reconnects"]
        session.started_at = state["started_at"]
        c = self.config
        capture = Capture(
            fmt, ingest, gap_threshold=c.gap_threshold, gap_window=c.gap_window, max_hold=c.max_hold,
            record_lag=c.record_lag, timing_reliable=session.timing_reliable, label=session.id,
        )  # fmt: skip
        capture.resume(state["capture"], session.clock() - time.time())
        session.fmt, session.sink, session.capture = fmt, ingest, capture
        session.catch_up = CatchUp(fmt.rate, session.clock())  # what was sent during the move: catch_up.py
        session.state, session.detached_at = SessionState.DETACHED, session.clock()  # the caller attaches
        return session

    # -- the giver ---------------------------------------------------------------------------------

    async def give(self, ask: dict[str, Any]) -> dict[str, Any]:
        """Hand the session ``ask`` names to the instance asking; its state, or NotFound / Conflict."""
        host, now = self.host, self.host.clock()
        session = host.registry.get(str(ask.get("session_id")))
        metadata = ask.get("metadata")
        if (
            session is None
            or session.ending
            or session.key != ask.get("key")
            or (metadata is not None and (session.metadata is None or session.metadata.text != metadata))
        ):
            raise NotFound("no such audio stream session here")
        silent = now - session.last_arrival >= TAKEOVER_SILENCE
        if session.state is not SessionState.DETACHED and not (ask.get("takeover") and silent):
            raise Conflict("the session is still carried by a live socket")
        if session.capture is None or session.sink is None or session.fmt is None:
            raise Conflict("the session has no recording yet (its format is not known)")
        session.owner = None  # a socket still attached sees it lost the stream and closes
        await session.detach(now)
        ingest = session.sink
        if not isinstance(ingest, Ingest) or ingest.closed:
            raise Conflict("the session's recording is closed")
        session.end_reason = "moving"  # no local reconnect, no reaper while it moves
        try:
            state = snapshot(session)
            await host.recorder.hand_off(ingest)
            source, target = (
                (self.peers.me, host.recorder.owner),
                (str(ask["instance_id"]), int(ask["owner"])),
            )
            if not await self.store.hand_over(session.id, ingest.id, source=source, target=target):
                raise Conflict("the session or its recording is no longer this instance's")
        except BaseException:
            session.end_reason = None  # still ours: a reconnect here, or the reaper, ends it as before
            raise
        host.recorder.let_go(ingest)
        session.end_reason, session.state = "moved", SessionState.ENDED
        if session.player is not None:
            await session.player.close()
        host.drop(session)
        log.info("audio_stream session handed over to the instance its module reconnected to",
                 extra={"session": session.id, "to": target[0], "recording_id": ingest.id})  # fmt: skip
        return state


def snapshot(session: Session) -> dict[str, Any]:
    """Where a detached session stands (its capture flushed), as JSON for the taker."""
    fmt, capture, sink = session.fmt, session.capture, session.sink
    assert fmt is not None
    assert capture is not None
    assert sink is not None
    meta = session.metadata
    return {
        "session_id": session.id,
        "path": session.path,
        "account_id": session.account_id,
        "recording_id": sink.id,
        "call_id": session.call_id,
        "stream_id": session.stream_id,
        "extra_headers": session.extra_headers,
        "metadata": None if meta is None else
        {"text": meta.text, "rate": meta.rate, "channels": meta.channels, "call_id": meta.call_id},
        "reconnects": session.stats.reconnects,
        "started_at": session.started_at,
        "format": {"dialect": fmt.dialect, "encoding": fmt.encoding, "rate": fmt.rate,
                   "tracks": list(fmt.tracks), "track_channels": list(fmt.track_channels),
                   "learnt_from": fmt.learnt_from},
        "dialect": session.dialect.resume_state(),
        "capture": capture.resume_state(time.time() - session.clock()),
    }  # fmt: skip
