"""The audio_stream listener: ``ws://host:MEDIA_MGR_AUDIO_STREAM_PORT/audio_stream`` on its own socket.

Chosen by measurement (``bench/audio_stream_load.py`` prints each stack's bare receive cost): picows
parses frames in C and calls back per frame with no task, no future and no timer, where the HTTP
port's stack (uvicorn) costs several times more per frame. The module sees what it sees on the
HTTP port: the same path (``/audio_stream`` and below), ``?token=`` / Basic / Bearer, the same
refusals as HTTP answers, the subprotocol echoed, pings answered, the same close codes.

Each socket is a ``transport.Socket`` for a ``connection.Connection``, whose task reads ASGI-shaped
messages from an inbox. Audio of a recording session takes the hot path instead: placed from the
frame callback (``Connection.frame_now``) while nothing is queued ahead of it, so the task wakes
only for ticks and control frames. The inbox is bounded: past ``INBOX_HIGH`` messages or
``INBOX_BYTES`` the socket stops being read until the task catches up (memory bounded per connection).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)
from picows.picows import WSAutoPingStrategy, WSProtocol  # type: ignore[attr-defined]

from media_mgr.audio_stream.connection import Connection
from media_mgr.audio_stream.service import AudioStreamService
from media_mgr.audio_stream.transport import SocketGone
from media_mgr.lifecycle import Component
from media_mgr.logs import LISTENING_LOGGER
from media_mgr.tasks import TaskSet

log = logging.getLogger("media_mgr.audio_stream")
PICOWS_LOG = logging.getLogger("media_mgr.audio_stream.picows")  # its per-connection lines are debug
READ_BUFFER = 2048  # a frame of 20 ms at 8 kHz is ~450 bytes as voipbit JSON; picows grows it when needed
# At most this much is read at once. picows doubles a connection's read buffer whenever one read
# fills it, and never shrinks it: after a stall (the process descheduled, the socket's backlog read
# in one go) every connection kept a buffer the size of its backlog, 300+ KiB each at 300 sessions.
# Capped, a buffer grows only to hold one frame plus one read.
READ_AT_MOST = 2048
PATH = "/audio_stream"
INBOX_HIGH = 256  # messages queued for a connection's task before its socket stops being read
INBOX_LOW = 64
INBOX_BYTES = 1 << 20  # ... or this much queued
HANDSHAKE_TIMEOUT = 10.0  # libwebsockets' own timeout for the round trips of a handshake
CLOSE_WAIT = 1.0  # after our close frame, how long the module has to answer before the TCP close
SHUTDOWN_CLOSE = 1012  # what uvicorn sends its WebSockets when the server stops (service restart)


def _code(code: WSCloseCode | int) -> int:
    """A close code as received: picows gives its enum, or an int for codes it does not name."""
    return code.value if isinstance(code, WSCloseCode) else int(code)


def _close_code(code: int) -> WSCloseCode:
    try:
        return WSCloseCode(code)
    except ValueError:
        return WSCloseCode.POLICY_VIOLATION


def _size(message: dict[str, Any]) -> int:
    return len(message.get("text") or message.get("bytes") or b"")


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Stream(WSListener):
    """One module's socket: a ``transport.Socket`` over picows' callbacks."""

    def __init__(self, owner: AudioStreamListener, request: WSUpgradeRequest, client: Any) -> None:
        raw_path, _, query = request.path.decode("latin-1").partition("?")
        self.owner = owner
        self.path = unquote(raw_path)
        self.query = query
        self.subprotocols = [p.strip() for h in request.headers.getall("sec-websocket-protocol", [])
                             for p in h.split(",") if p.strip()]  # fmt: skip
        self.headers: Mapping[str, str] = request.headers
        self.client: tuple[str, int] | None = (str(client[0]), int(client[1])) if client else None
        self.conn = Connection(owner.service, self)
        self.transport: WSTransport | None = None
        self._inbox: deque[dict[str, Any]] = deque()
        self._inbox_bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self._reading = True
        self._parts: list[bytes] = []  # a fragmented message so far
        self._parts_type = WSMsgType.TEXT
        self._parts_size = 0
        self._ended = False  # the disconnect message is in the inbox
        self._writable = asyncio.Event()
        self._writable.set()

    # -- transport.Socket --------------------------------------------------------------------------

    async def accept(self, subprotocol: str | None) -> None:
        """The 101 went out from the handshake callback (``AudioStreamListener._upgrade``)."""

    async def deny(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        raise RuntimeError("refusals are answered from the handshake callback")

    async def receive(self, timeout: float) -> dict[str, Any] | None:
        """Waits on a future a timer wakes: a tick costs no cancellation and no exception."""
        if not self._inbox:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, _wake, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                timer.cancel()
            if not self._inbox:
                return None
        message = self._inbox.popleft()
        self._inbox_bytes -= _size(message)
        if not self._reading and len(self._inbox) <= INBOX_LOW and self._inbox_bytes <= INBOX_BYTES // 4:
            self._reading = True
            if self.transport is not None:
                self.transport.underlying_transport.resume_reading()
        return message

    async def send_text(self, text: str) -> None:
        t = self.transport
        if t is None or t.is_disconnected or t.is_close_frame_sent:
            raise SocketGone("the socket is closed")
        t.send(WSMsgType.TEXT, text.encode())
        await self._writable.wait()

    async def close(self, code: int, reason: str) -> None:
        t = self.transport
        if t is None or t.is_disconnected or t.is_close_frame_sent:
            return
        t.send_close(_close_code(code), reason.encode()[:120])
        asyncio.get_running_loop().call_later(CLOSE_WAIT, t.disconnect)

    # -- picows callbacks --------------------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.owner.opened(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if frame.payload_size > self.owner.max_message_bytes:
            return self._fail(1009, "message too big")
        if kind is WSMsgType.BINARY or kind is WSMsgType.TEXT:
            if self._parts:
                return self._fail(1002, "a new message inside a fragmented one")
            if frame.fin:
                if kind is WSMsgType.BINARY:
                    data = frame.get_payload_as_bytes()
                    if not self._inbox:  # the binary dialect's audio: placed at once, no event built
                        taken = self.conn.binary_now(data)
                        if taken is True:
                            return None
                        if taken is not False:
                            return self._push(
                                {"type": "websocket.receive", "error": taken, "at": self.conn.clock()}
                            )
                    return self._deliver(None, data)
                if not self._inbox:  # voipbit's media: parsed from the frame's own bytes, no str made
                    taken = self.conn.text_now(frame.get_payload_as_memoryview())
                    if taken is True:
                        return None
                    if taken is not False:
                        return self._push(
                            {"type": "websocket.receive", "error": taken, "at": self.conn.clock()}
                        )
                try:
                    text = frame.get_payload_as_utf8_text()
                except UnicodeDecodeError:
                    return self._not_utf8()
                return self._deliver(text, None)
            self._parts_type = kind
            self._parts_size = 0
        elif kind is WSMsgType.CONTINUATION:
            if not self._parts:
                return self._fail(1002, "a continuation of no message")
        elif kind is WSMsgType.CLOSE:
            return self._peer_closed(transport, frame)
        else:
            return  # PING is answered by picows, PONG needs nothing
        self._parts_size += frame.payload_size
        if self._parts_size > self.owner.max_message_bytes:
            return self._fail(1009, "message too big")
        self._parts.append(frame.get_payload_as_bytes())
        if frame.fin:
            data, self._parts = b"".join(self._parts), []
            self._parts_size = 0
            if self._parts_type is WSMsgType.BINARY:
                return self._deliver(None, data)
            try:
                return self._deliver(data.decode(), None)
            except UnicodeDecodeError:
                return self._not_utf8()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        shake = transport.close_handshake
        code = 1006
        if shake is not None and shake.recv is not None:
            code = _code(shake.recv.code)
        elif shake is not None and shake.sent is not None:
            code = _code(shake.sent.code)
        self._disconnected(code)
        self.owner.closed(self)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- inside ------------------------------------------------------------------------------------

    def _deliver(self, text: str | None, data: bytes | None) -> None:
        if not self._inbox:  # else it goes after what is queued, in order
            taken = self.conn.frame_now(text, data)
            if taken is True:
                return
            if taken is not False:
                return self._push({"type": "websocket.receive", "error": taken, "at": self.conn.clock()})
        # Stamped now: a frame queued while the task is busy (a recording opening) keeps its real
        # arrival time, or a backlog handled late would look like a gap on the media clock.
        self._push({"type": "websocket.receive", "text": text, "bytes": data, "at": self.conn.clock()})

    def _push(self, message: dict[str, Any]) -> None:
        self._inbox.append(message)
        self._inbox_bytes += _size(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        full = len(self._inbox) >= INBOX_HIGH or self._inbox_bytes >= INBOX_BYTES
        if self._reading and full and self.transport is not None:
            self._reading = False
            self.transport.underlying_transport.pause_reading()

    def _disconnected(self, code: int) -> None:
        if not self._ended:
            self._ended = True
            self._push({"type": "websocket.disconnect", "code": code})

    def _peer_closed(self, transport: WSTransport, frame: WSFrame) -> None:
        code = _code(frame.get_close_code())
        if not transport.is_close_frame_sent:
            transport.send_close(_close_code(code) if code else WSCloseCode.OK)  # echo it, as RFC 6455 asks
        transport.disconnect()
        self._disconnected(code or 1005)

    def _not_utf8(self) -> None:
        log.info("websocket closed: a text frame is not UTF-8", extra={"peer": self.conn.peer, "code": 1007})
        self._fail(1007, "")

    def _fail(self, code: int, reason: str) -> None:
        """The peer broke the protocol: close with ``code`` and tell the connection it ended so."""
        t = self.transport
        if t is not None and not t.is_close_frame_sent:
            t.send_close(_close_code(code), reason.encode())
            asyncio.get_running_loop().call_later(CLOSE_WAIT, t.disconnect)
        self._disconnected(code)

    def shut(self) -> None:
        """The server stops: close the socket as uvicorn does, the session waits for the module."""
        self._fail(SHUTDOWN_CLOSE, "server shutting down")


class AudioStreamListener(Component):
    """``async with AudioStreamListener(service, sock, ...)``: serves the socket; leaving closes every
    stream's socket (the sessions are then ended by the service, which leaves after it)."""

    def __init__(self, service: AudioStreamService, sock: socket.socket, *, max_message_bytes: int) -> None:
        self.service = service
        self.sock = sock
        self.max_message_bytes = max_message_bytes
        self.streams: set[_Stream] = set()
        self.tasks = TaskSet("audio_stream.listener", log)
        self.server: asyncio.Server | None = None
        PICOWS_LOG.setLevel(max(PICOWS_LOG.getEffectiveLevel(), logging.WARNING))
        self._picows_log = logging.LoggerAdapter(PICOWS_LOG, {})

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._protocol, sock=self.sock)
        host, port = self.sock.getsockname()[:2]
        logging.getLogger(LISTENING_LOGGER).info(f"listening audio_stream {host}:{port}")

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for stream in list(self.streams):
            stream.shut()
        await self.tasks.stop()

    def _protocol(self) -> WSProtocol:
        return peer_protocol(self._upgrade, 2 * self.max_message_bytes, self._picows_log)

    def _upgrade(self, request: WSUpgradeRequest, client: Any) -> WSUpgradeResponseWithListener | None:
        path = request.path.partition(b"?")[0]
        if path != PATH.encode() and not path.startswith(PATH.encode() + b"/"):
            return None  # 404
        stream = _Stream(self, request, client)
        denial = stream.conn.admit()
        if denial is not None:
            headers = {"content-type": "application/json", **denial.headers}
            response = WSUpgradeResponse.create_error_response(denial.status, denial.body, headers)
            return WSUpgradeResponseWithListener(response, None)
        sub = stream.conn.subprotocol
        response = WSUpgradeResponse.create_101_response({"Sec-WebSocket-Protocol": sub} if sub else None)
        return WSUpgradeResponseWithListener(response, stream)

    def opened(self, stream: _Stream) -> None:
        self.streams.add(stream)
        self.tasks.spawn(stream.conn.serve(), name="audio_stream.connection")

    def closed(self, stream: _Stream) -> None:
        self.streams.discard(stream)


Upgrade = Callable[[WSUpgradeRequest, Any], WSUpgradeResponseWithListener | None]


def peer_protocol(upgrade: Upgrade, max_frame_bytes: int, logger: logging.LoggerAdapter[Any]) -> WSProtocol:
    """picows' protocol for one connection, as ``picows.ws_create_server`` builds it, with the peer's
    address given to ``upgrade`` (the loopback rule needs it) and reads capped (``READ_AT_MOST``).
    Frames up to ``max_frame_bytes`` are read (twice the message limit: ours, 1009, is the check).
    A LoggerAdapter, not a Logger: picows would make a child Logger per connection of a Logger."""
    peer: list[Any] = [None]

    def on_upgrade(request: WSUpgradeRequest) -> WSUpgradeResponseWithListener | None:
        return upgrade(request, peer[0])

    proto = _PeerProtocol(
        None, None, False, on_upgrade, logger, True, HANDSHAKE_TIMEOUT, False, 20.0, 20.0,
        WSAutoPingStrategy.PING_WHEN_IDLE, True, max_frame_bytes, None, READ_BUFFER,
    )  # fmt: skip
    proto.peer = peer
    return proto


_picows_get_buffer = WSProtocol.get_buffer


class _PeerProtocol(WSProtocol):  # type: ignore[misc]
    """picows' protocol, telling the handshake callback who connected, reading at most
    ``READ_AT_MOST`` at once."""

    peer: list[Any]

    def get_buffer(self, size_hint: int) -> memoryview:
        view: memoryview = _picows_get_buffer(self, size_hint)  # called per read: no super()
        return view[:READ_AT_MOST] if len(view) > READ_AT_MOST else view

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.peer[0] = transport.get_extra_info("peername")
        super().connection_made(transport)
