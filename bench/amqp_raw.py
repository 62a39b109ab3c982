"""A bench-only AMQP 0-9-1 client on one channel, so the load generator is not what gets measured.

aiormq spends about 0.3 ms of CPU per request sent and reply read (a task, a lock, a future and pamqp's
marshalling for each); on a 2-core machine that is CPU the responder under test does not get. Here pamqp
builds only the handful of setup frames; a publish is three frames written from pre-built bytes (with the
timestamp packed at send time), and consumed bodies are handed over as they arrive, frames parsed by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from pamqp import commands, frame, header

_FRAME: Final = struct.Struct(">BHI")
_METHOD_IDS: Final = struct.Struct(">HH")
_U64: Final = struct.Struct(">Q")
_END: Final = b"\xce"
_HEARTBEAT: Final = b"\x08\x00\x00\x00\x00\x00\x00\xce"
CONTENT_TYPE_FLAG: Final = 0x8000  # property flag bits (AMQP 0-9-1, 4.2.6): content-type
TIMESTAMP_FLAG: Final = 0x0040  # ... timestamp


def shortstr(value: str) -> bytes:
    data = value.encode()
    return bytes([len(data)]) + data


class RawAmqp(asyncio.Protocol):
    """Channel 1 of one connection. ``on_body`` receives every content body frame consumed (no_ack)."""

    def __init__(
        self,
        on_body: Callable[[bytes], None] | None = None,
        on_confirm: Callable[[int, bool], None] | None = None,
    ) -> None:
        self.on_body = on_body
        self.on_confirm = on_confirm  # the broker's Basic.Ack of our publishes (confirm mode): tag, multiple
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._rpc: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = asyncio.get_running_loop().create_future()

    @classmethod
    async def connect(
        cls, url: str, on_body: Callable[[bytes], None] | None = None,
        on_confirm: Callable[[int, bool], None] | None = None,
    ) -> RawAmqp:  # fmt: skip
        parts = urlsplit(url)
        loop = asyncio.get_running_loop()
        host, port = parts.hostname or "127.0.0.1", parts.port or 5672
        _, self = await loop.create_connection(lambda: cls(on_body, on_confirm), host, port)
        assert self.transport is not None
        self.transport.write(bytes(header.ProtocolHeader().marshal()))
        await self._expect(commands.Connection.Start)
        auth = f"\0{unquote(parts.username or 'guest')}\0{unquote(parts.password or 'guest')}"
        self.send(commands.Connection.StartOk(client_properties={"product": "media_req bench"},
                                              mechanism="PLAIN", response=auth), 0)  # fmt: skip
        tune = await self._expect(commands.Connection.Tune)
        # No heartbeats: a bench run is short, and the broker's default (60 s) would only add frames.
        self.send(commands.Connection.TuneOk(tune.channel_max, tune.frame_max, 0), 0)
        vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        await self.call(commands.Connection.Open(vhost), commands.Connection.OpenOk, 0)
        await self.call(commands.Channel.Open(), commands.Channel.OpenOk)
        return self

    def send(self, value: Any, channel: int = 1) -> None:
        assert self.transport is not None
        self.transport.write(frame.marshal(value, channel))

    async def call(self, value: Any, reply: type, channel: int = 1) -> Any:
        self.send(value, channel)
        return await self._expect(reply)

    async def _expect(self, kind: type) -> Any:
        got = await asyncio.wait_for(self._rpc.get(), 10)
        if not isinstance(got, kind):
            raise RuntimeError(f"expected {kind.__name__}, got {got!r}")
        return got

    def publish_frames(self, exchange: str, routing_key: str, content_type: str) -> PublishFrames:
        return PublishFrames(exchange, routing_key, content_type)

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        with contextlib.suppress(RuntimeError, TimeoutError, ConnectionError):
            await self.call(commands.Connection.Close(200, "bye", 0, 0), commands.Connection.CloseOk, 0)
        self.transport.close()

    # -- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)
        self._rpc.put_nowait(ConnectionError(f"connection lost: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        at, end = 0, len(buf)
        on_body = self.on_body
        while end - at >= 8:
            kind, _, size = _FRAME.unpack_from(buf, at)
            if end - at < size + 8:
                break
            start = at + 7
            if kind == 3:
                if on_body is not None:
                    on_body(bytes(buf[start : start + size]))
            elif kind == 1:
                ids = _METHOD_IDS.unpack_from(buf, start)
                if ids == (60, 80) and self.on_confirm is not None:  # Basic.Ack: a publish confirmed
                    (tag,) = _U64.unpack_from(buf, start + 4)
                    self.on_confirm(tag, bool(buf[start + 12] & 1))
                elif ids != (60, 60):  # a Basic.Deliver says nothing the body does not
                    _, _, value = frame.unmarshal(bytes(buf[at : start + size + 1]))
                    if isinstance(value, commands.Connection.Close):
                        self.send(commands.Connection.CloseOk(), 0)
                    elif isinstance(value, commands.Channel.Close):
                        self.send(commands.Channel.CloseOk())
                    self._rpc.put_nowait(value)
            elif kind == 8:
                self.write(_HEARTBEAT)
            at += size + 8
        del buf[:at]


class PublishFrames:
    """Basic.Publish to one exchange and routing key, pre-built: ``frames(body, timestamp)`` is the
    bytes of method, header (content type, timestamp) and body frames for one message."""

    def __init__(self, exchange: str, routing_key: str, content_type: str) -> None:
        method = struct.pack(">HHH", 60, 40, 0) + shortstr(exchange) + shortstr(routing_key) + b"\x00"
        self._method = _FRAME.pack(1, 1, len(method)) + method + _END
        self._content_type = shortstr(content_type)
        self._header_size = 14 + len(self._content_type) + 8

    def frames(self, body: bytes, timestamp: int) -> bytes:
        return b"".join((
            self._method,
            _FRAME.pack(2, 1, self._header_size),
            struct.pack(">HHQH", 60, 0, len(body), CONTENT_TYPE_FLAG | TIMESTAMP_FLAG),
            self._content_type, _U64.pack(timestamp), _END,
            _FRAME.pack(3, 1, len(body)), body, _END,
        ))  # fmt: skip
