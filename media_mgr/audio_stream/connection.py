"""One mod_audio_stream WebSocket connection's state machine, whichever server carries the socket.

The socket (``transport.Socket``) is the route on the HTTP port (``endpoint.py``) or the listener
on its own port (``listener.py``): the module sees the same behaviour on either.
HANDSHAKE: ``transport.admission`` (an HTTP answer refuses, reference A1.8). OPEN: the first frame
picks the dialect (voipbit JSON, or the binary dialect of amigniter and mod_audio_fork) and a
session, new or the one a reconnect continues. Every receive has a deadline (ticks for
housekeeping, ``timeout_idle`` in all). CLOSED: how the socket ended decides the session's fate:
``stop``/close 1000 end it, a dropped socket leaves it waiting for the module, bad input ends it
with a close code and refuses its URL for a while.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qsl

from media_mgr.audio_stream import auth, dialects
from media_mgr.audio_stream.dialects.base import Dialect
from media_mgr.audio_stream.events import (
    Audio,
    BadInput,
    Cleared,
    EndOfStream,
    Event,
    IncorrectPayload,
    Media,
    Metadata,
    Played,
    Start,
    Stop,
    Text,
)
from media_mgr.audio_stream.flood import FloodGuard
from media_mgr.audio_stream.formats import hint_from
from media_mgr.audio_stream.hot_path import HotPath
from media_mgr.audio_stream.service import AudioStreamService
from media_mgr.audio_stream.session import Session
from media_mgr.audio_stream.transport import ConnState, Denial, Socket, admission
from media_mgr.errors import MediaMgrError
from media_mgr.ids import is_hex32

log = logging.getLogger("media_mgr.audio_stream")

NORMAL_CLOSES = (1000, 1001)
PEER_BAD_INPUT = {1007: "text that is not UTF-8", 1009: "a message over the size limit"}


class Connection(HotPath):
    def __init__(self, service: AudioStreamService, ws: Socket) -> None:
        self.service = service
        self.ws = ws
        self.config = service.config
        self.clock = service.clock
        self.state = ConnState.HANDSHAKE
        query = ws.query
        self.url = ws.path + (f"?{query}" if query else "")  # what a reconnect repeats
        self.query = dict(parse_qsl(query))
        self.peer = f"{ws.client[0]}:{ws.client[1]}" if ws.client else ""
        self.subprotocol: str | None = None
        self.grant = auth.Grant("none")
        self.hint = hint_from(self.query)  # what the URL says about the format
        self._fresh: Dialect | None = None  # picked by this socket's first frame, until it has a session
        self.dialect_name: str | None = None
        self.session: Session | None = None
        self.guard = FloodGuard(messages_per_second=service.config.session.messages_per_second)
        self.bad_input: BadInput | None = None
        self.bad_frames = 0  # frames dropped before this socket had a session
        self.ended_by: str | None = None  # "stop" or "eof": the stream itself said it ended
        self.notes = 0
        self.opened_at = self.last_frame = self.clock()
        self._counted: dict[tuple[str, str], Any] = {}  # the frames counter's children, looked up once
        self._uncounted: dict[tuple[str, str], int] = {}  # frames counted since the last tick
        self._hot_frames = 0  # voipbit media taken by ``text_now`` since the last tick
        self._hot_binary = 0  # binary audio taken by ``binary_now`` since the last tick

    # -- handshake ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """A server that answers the upgrade itself (Starlette): admit, then serve."""
        denial = self.admit()
        if denial is not None:
            await self.ws.deny(denial.status, denial.body, denial.headers)
            return
        await self.ws.accept(self.subprotocol)
        await self.serve()

    async def serve(self) -> None:
        """The socket is open (101 sent): read it until it ends, then settle the session."""
        self.opened_at = self.last_frame = self.clock()
        self.state = ConnState.OPEN
        self.service.metrics.audio_stream_connections.labels("accepted").inc()
        peer_code: int | None = None
        try:
            peer_code = await self._loop()
        except Exception as exc:  # a fault of ours: this stream ends, the server goes on
            log.exception("audio_stream connection failed", extra={"session": self._sid(), "peer": self.peer})
            self.bad_input = BadInput(f"internal error: {exc!r}", fatal=True, close_code=1011)
            await self._close(1011, "internal error")
        finally:
            self.state = ConnState.CLOSED
            self._flush_counts()
            await self._settle(peer_code)

    def admit(self) -> Denial | None:
        """Before the upgrade: refused URL, session limit, load, credentials; picks the subprotocol.
        Synchronous, so a server that calls it from its handshake callback (picows) needs no task."""
        admitted = admission(self.service, self.ws, self.url, self.query)
        if isinstance(admitted, Denial):
            self.state = ConnState.CLOSED
            self.service.metrics.audio_stream_connections.labels(admitted.outcome).inc()
            # The client's own failure (401, 403) is the access line; a full server (503) is worth a warning.
            log.log(
                logging.WARNING if admitted.status >= 500 else logging.DEBUG,
                "audio_stream upgrade refused",
                extra={"peer": self.peer, "path": self.ws.path, "status": admitted.status,
                       "detail": admitted.detail},
            )  # fmt: skip
            return admitted
        self.grant, self.subprotocol = admitted
        return None

    # -- open --------------------------------------------------------------------------------------

    async def _loop(self) -> int | None:
        """Read until the peer closes (its code is returned) or we close (None).

        Housekeeping runs every ``tick`` whether frames flow or not; a receive waits until then.
        """
        next_tick = self.clock()
        while True:
            now = self.clock()
            if now >= next_tick:
                next_tick = now + self.config.tick
                self._flush_counts()
                if self.session is not None and not self._owns():
                    await self._close(1001, "another connection continues this stream")
                    return None
                try:
                    if self.session is not None and not self.session.ending:
                        await self.session.tick(now)  # places the hot path's arrivals first
                except BadInput as exc:  # their flood guard: as if raised on the hot path
                    await self._refuse(exc)
                    return None
                except MediaMgrError as exc:
                    await self._fail(exc)
                    return None
                if now - self.last_frame > self.config.timeout_idle:
                    await self._close(1001, "idle")
                    return None
            message = await self.ws.receive(max(0.0, next_tick - self.clock()))
            if message is None:  # the tick came first
                continue
            now = self.last_frame = message.get("at") or self.clock()  # when it arrived, if known
            if message["type"] == "websocket.disconnect":
                return int(message.get("code") or 1005)
            try:
                try:
                    if "error" in message:  # raised on the hot path (``frame_now``), handled here
                        raise message["error"]
                    text, data = message.get("text"), message.get("bytes")
                    taken = self.queued_now(text, data, now)
                    if taken is False:
                        await self._on_message(text, data, now)
                    elif taken is not True:
                        raise taken
                except BadInput as exc:
                    if exc.fatal:
                        raise
                    self._bad(exc, now)
            except BadInput as exc:
                await self._refuse(exc)
                return None
            except MediaMgrError as exc:
                await self._fail(exc)
                return None

    async def _on_message(self, text: str | None, data: bytes | None, now: float) -> None:
        """Parse with the stream's dialect (picked by the first frame of a new stream), then act."""
        dialect = self.session.dialect if self.session is not None else self._fresh
        if dialect is None:
            dialect = self._fresh = dialects.pick(
                text,
                self.hint,
                self.query.get("encoding"),
                metadata_timeout=self.config.session.metadata_timeout,
            )
        self.dialect_name = dialect.name
        kind = "audio" if data is not None or (text and '"media"' in text) else "text"
        self._count(dialect.name, kind)
        await self._on_event(dialect, dialect.parse(text, data), now)

    async def _on_event(self, dialect: Dialect, event: Event, now: float) -> None:
        session = self.session
        match event:
            case Media() | Audio():
                if session is None:
                    session = await self._open(dialect, event, now)
                if not session.ending:
                    await session.on_audio(event, now)
            case Start():
                if session is not None:
                    self._note("a second start on one connection; ignored", session)
                    return
                session = self._new(dialect, dialect.join(self.url, event).key)
                await session.on_start(event)
            case Metadata():  # an ixwebsocket build of amigniter re-sends it on every reconnect (B2)
                if session is None:
                    session = await self._open(dialect, event, now)
                if session.metadata is None:
                    await session.on_metadata(event)
            case Stop() | EndOfStream():
                self.ended_by = "stop" if isinstance(event, Stop) else "eof"
                if session is not None:
                    await self.service.end(session, self.ended_by, complete=True)
            case Played(name=name):
                if session is None or session.player is None or not session.player.on_played(name):
                    self._note(f"playedStream for an unknown checkpoint {name[:40]!r}", session)
            case Cleared():
                if session is not None and session.player is not None:
                    session.player.on_cleared()
            case IncorrectPayload(payload=payload):
                log.warning(
                    "audio_stream module refused one of our messages (incorrectPayload)",
                    extra={"session": self._sid(), "payload": payload[:200]},
                )
                if session is not None:
                    self.service.emit(session, "incorrect_payload", {"payload": payload[:1000]})
            case Text(note=note):
                self.guard.message(now)
                self._note(note, session)

    # -- sessions ----------------------------------------------------------------------------------

    async def _open(self, dialect: Dialect, event: Event, now: float) -> Session:
        """The session a first audio or metadata frame continues (a reconnect, here or moved here
        from another instance), else a new one."""
        join = dialect.join(self.url, event)
        found = None
        if join.rejoin:
            found = await self.service.rejoin(
                join, dialect, now, peer=self.peer, subprotocol=self.subprotocol
            )
        return self._attach(found, now) if found is not None else self._new(dialect, join.key)

    def _attach(self, session: Session, now: float) -> Session:
        log.info(
            "audio_stream reconnect joins its session",
            extra={"session": session.id, "peer": self.peer, "was": session.state.value},
        )
        self.service.metrics.audio_stream_connections.labels("rejoined").inc()
        session.attach(self._send, self, self.opened_at)
        self.session = session
        return session

    def _new(self, dialect: Dialect, key: str) -> Session:
        account = self.query.get("account_id", "")
        session = self.service.new_session(
            key,
            dialect,
            path=self.ws.path,
            peer=self.peer,
            account_id=account if is_hex32(account) else None,
            subprotocol=self.subprotocol,
            recording_id=self.grant.recording_id,
        )
        session.attach(self._send, self, self.opened_at)
        self.session = session
        return session

    def _owns(self) -> bool:
        return self.session is None or self.session.owner is self

    async def _send(self, text: str) -> None:
        await self.ws.send_text(text)  # SocketGone (a ConnectionError) when it cannot

    # -- problems ----------------------------------------------------------------------------------

    def _bad(self, exc: BadInput, now: float) -> None:
        """A frame dropped: counted against the session's limit, or this socket's before it has one."""
        self.guard.message(now)
        if self.session is not None:
            self.session.bad_frame(exc)
            return
        self.bad_frames += 1
        self._note(exc.reason, None)
        if self.bad_frames > self.config.session.bad_frames:
            raise BadInput(f"{self.bad_frames} unusable frames ({exc.reason})", fatal=True, close_code=1007)

    def _note(self, what: str, session: Session | None) -> None:
        """Text that is no audio: legal (send_text), so logged once and counted, never fatal alone."""
        self.notes += 1
        if self.notes == 1:
            log.info("audio_stream message ignored", extra={"session": self._sid(), "what": what[:200]})
        if session is not None:
            session.stats.texts += 1

    async def _refuse(self, exc: BadInput) -> None:
        """Bad input that ends the connection: closed with its code."""
        self.bad_input = exc
        log.warning(
            "audio_stream closing on bad input",
            extra={"session": self._sid(), "peer": self.peer, "reason": exc.reason, "code": exc.close_code},
        )
        await self._close(exc.close_code, exc.reason[:120])

    async def _fail(self, exc: MediaMgrError) -> None:
        log.warning(
            "audio_stream closing: the service cannot go on",
            extra={"session": self._sid(), "error": exc.detail, "code": exc.ws_close},
        )
        self.bad_input = BadInput(exc.detail, fatal=True, close_code=exc.ws_close)
        await self._close(exc.ws_close, exc.detail[:120])

    async def _close(self, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(self.config.timeout_send):
                await self.ws.close(code, reason)
        except (TimeoutError, ConnectionError, RuntimeError, OSError):
            pass

    async def _settle(self, peer_code: int | None) -> None:
        """What the end of this socket means for its session."""
        session, now = self.session, self.clock()
        extra: dict[str, Any] = {
            "session": self._sid(),
            "peer": self.peer,
            "peer_code": peer_code,
            "dialect": self.dialect_name,
        }
        if peer_code in PEER_BAD_INPUT:
            self.bad_input = BadInput(
                f"the module sent {PEER_BAD_INPUT[peer_code]}", fatal=True, close_code=peer_code
            )
            log.warning("audio_stream closed on bad input", extra={**extra, "reason": self.bad_input.reason})
        reason = "bad_input" if self.bad_input else (self.ended_by or f"closed {peer_code}")
        self.service.metrics.audio_stream_closes.labels(
            "bad_input"
            if self.bad_input
            else self.ended_by or ("normal" if peer_code in NORMAL_CLOSES else "dropped")
        ).inc()
        if self.bad_input is not None and self.bad_input.close_code != 1011 and self.grant.via == "token":
            # The peer's fault: make a voipbit module give up, if the URL is this stream's own (a
            # shared URL refused would refuse every call using it).
            self.service.registry.refuse(self.url, now + self.config.timeout_refuse)
        if session is None or not self._owns() or session.ending:
            log.info("audio_stream connection closed", extra={**extra, "reason": reason})
            return
        if self.bad_input is not None:
            why = "server_error" if self.bad_input.close_code == 1011 else "bad_input"
            await self.service.end(session, why, complete=False)
        elif self.ended_by is not None or peer_code in NORMAL_CLOSES:
            await self.service.end(session, "closed", complete=True)
        else:
            await session.detach(now)
            reason = "dropped; waiting for the module to reconnect"
        log.info("audio_stream connection closed", extra={**extra, "reason": reason})

    def _sid(self) -> str | None:
        return self.session.id if self.session else None
