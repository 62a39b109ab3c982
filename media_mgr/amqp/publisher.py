"""Publishing replies with broker confirms, from pre-built frames: the reply path's hot half.

aiormq's ``basic_publish`` costs about as much CPU as everything else a media_req takes together: per
message a ``Countdown``, a random message id, pamqp objects for the method and header frames and their
marshalling, the channel lock, an ``asyncio.timeout``, a context manager, an awaited queue put and a
future with callbacks. :class:`ConfirmedPublisher` writes the same three frames (Basic.Publish, a header
with only ``content_type``, the body split at the negotiated frame size) from bytes built once per
exchange and routing key, into the same connection's write queue, and registers the confirmation where
aiormq keeps its own (``channel.confirmations``, so a channel loss fails it as aiormq fails its own).
The broker's Basic.Ack and Basic.Nack frames are taken off the channel as they are read
(``channel_tap``) and settle the confirmations at once, oldest first: an ack resolves the future, a
nack fails it with aiormq's ``DeliveryError``. This channel carries only these publishes, so delivery
tags stay in step with the broker's count, and in order.

Instead of a timer per publish, one sweep fails confirmations still pending ``timeout`` after they were
sent (checked every ``timeout / 4``).

Writes are coalesced: on loopback a ``send()`` costs the sender the broker-side TCP receive too, and
was the largest single cost per reply. Messages published in one turn of the event loop leave in one
write, and a write follows the previous one by at least ``linger`` (1 ms): at low rates no reply waits,
at thousands per second each write carries several replies for at most 1 ms of added latency.
"""

from __future__ import annotations

import asyncio
import collections
import struct
from collections.abc import Callable
from typing import Any, Final

from aiormq import Channel
from aiormq.abc import ChannelFrame
from aiormq.exceptions import DeliveryError
from pamqp import commands as spec

from media_mgr.amqp import channel_tap

_FRAME: Final = struct.Struct(">BHI")
_HEADER: Final = struct.Struct(">HHQH")
_END: Final = b"\xce"
_CONTENT_TYPE_FLAG: Final = 0x8000
_METHOD_CACHE: Final = 4096
_FRAME_OVERHEAD: Final = 8


def _shortstr(value: str) -> bytes:
    data = value.encode()
    if len(data) > 255:
        raise ValueError(f"AMQP short string longer than 255 bytes: {value[:40]!r}...")
    return bytes((len(data),)) + data


class ConfirmedPublisher:
    """Publishes on one aiormq channel opened with publisher confirms; ``publish`` returns the future
    of the broker's confirm (a ``TimeoutError`` after ``timeout``)."""

    def __init__(self, channel: Channel, content_type: str, timeout: float, linger: float = 0.001) -> None:
        if not channel.publisher_confirms:
            raise ValueError("the channel must have publisher confirms on")
        self.channel = channel
        self.timeout = timeout
        self.linger = linger
        self._last_write = 0.0
        self._number = channel.number
        self._properties = _shortstr(content_type)
        self._methods: dict[tuple[str, str], bytes] = {}
        tune = channel.connection.connection_tune
        self._max_body = (tune.frame_max or 131072) - _FRAME_OVERHEAD
        self._pending: collections.deque[tuple[float, asyncio.Future[object]]] = collections.deque()
        self._backlog: collections.deque[ChannelFrame] = collections.deque()
        self._writer: asyncio.Task[None] | None = None
        self._turn: list[bytes] = []  # frames published in this loop turn, written at its end
        self._sweep: asyncio.TimerHandle | None = None
        channel_tap.divert(channel, _settle_confirms(channel))

    @property
    def is_closed(self) -> bool:
        return bool(self.channel.is_closed)

    def publish(self, exchange: str, routing_key: str, body: bytes) -> asyncio.Future[object]:
        """Queue one message for the wire now (no await); the future settles with the broker's answer."""
        channel = self.channel
        if channel.is_closed:
            raise ConnectionError("the publishing channel is closed")
        frames = self._frames(exchange, routing_key, body)
        channel.delivery_tag += 1
        confirmation: asyncio.Future[object] = channel.create_future()
        channel.confirmations[channel.delivery_tag] = confirmation
        loop = asyncio.get_running_loop()
        if not self._turn:
            wait = self._last_write + self.linger - loop.time()
            if wait > 0:
                loop.call_later(wait, self._flush)
            else:
                loop.call_soon(self._flush)
        self._turn.append(frames)
        self._pending.append((loop.time() + self.timeout, confirmation))
        if self._sweep is None:
            self._sweep = loop.call_later(self.timeout / 4, self._expire)
        return confirmation

    def _frames(self, exchange: str, routing_key: str, body: bytes) -> bytes:
        number = self._number
        method = self._methods.get((exchange, routing_key))
        if method is None:
            payload = b"\x00\x3c\x00\x28\x00\x00" + _shortstr(exchange) + _shortstr(routing_key) + b"\x00"
            method = _FRAME.pack(1, number, len(payload)) + payload + _END
            if len(self._methods) >= _METHOD_CACHE:
                self._methods.clear()
            self._methods[(exchange, routing_key)] = method
        props = self._properties
        parts = [
            method,
            _FRAME.pack(2, number, 14 + len(props)),
            _HEADER.pack(60, 0, len(body), _CONTENT_TYPE_FLAG),
            props,
            _END,
        ]
        step = self._max_body
        for at in range(0, len(body), step):
            chunk = body[at : at + step]
            parts += (_FRAME.pack(3, number, len(chunk)), chunk, _END)
        return b"".join(parts)

    def _flush(self) -> None:
        turn, self._turn = self._turn, []
        self._last_write = asyncio.get_running_loop().time()
        if turn and not self.channel.is_closed:  # else its confirmations failed with the channel
            self._write(ChannelFrame(payload=b"".join(turn), should_close=False))

    def _write(self, frame: ChannelFrame) -> None:
        """In order, always: straight into the connection's queue, or behind what waits for room."""
        queue = self.channel.connection.write_queue
        if not self._backlog:
            try:
                queue.put_nowait(frame)
                return
            except asyncio.QueueFull:
                pass
        self._backlog.append(frame)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain_backlog(queue))

    async def _drain_backlog(self, queue: asyncio.Queue[ChannelFrame]) -> None:
        try:
            while self._backlog:
                await queue.put(self._backlog[0])
                self._backlog.popleft()
        finally:
            self._writer = None

    def _expire(self) -> None:
        """Fail the confirmations that waited past ``timeout``; the oldest come first."""
        self._sweep = None
        pending = self._pending
        loop = asyncio.get_running_loop()
        now = loop.time()
        while pending and (pending[0][1].done() or pending[0][0] <= now):
            _, confirmation = pending.popleft()
            if not confirmation.done():
                confirmation.set_exception(TimeoutError("no publisher confirm in time"))
        if pending:
            self._sweep = loop.call_later(self.timeout / 4, self._expire)

    def close(self) -> None:
        """Stop sweeping; what is pending is failed by the channel's own close."""
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        if self._writer is not None:
            self._writer.cancel()


def _settle_confirms(channel: Channel) -> Callable[[Any], bool]:
    """The broker's confirms on ``channel``, settled as read: ``multiple`` covers every tag up to its own."""
    confirmations = channel.confirmations

    def take(frame: Any) -> bool:
        if not isinstance(frame, spec.Basic.Ack | spec.Basic.Nack):
            return False
        last = frame.delivery_tag or 0
        if frame.multiple:
            while confirmations:
                tag = next(iter(confirmations))
                if tag > last:
                    break
                _settle(confirmations.pop(tag), frame)
        elif (confirmation := confirmations.pop(last, None)) is not None:
            _settle(confirmation, frame)
        return True

    return take


def _settle(confirmation: Any, frame: spec.Basic.Ack | spec.Basic.Nack) -> None:
    if not isinstance(confirmation, asyncio.Future) or confirmation.done():
        return  # timed out by the sweep, or cancelled: nobody waits for it any more
    if isinstance(frame, spec.Basic.Ack):
        confirmation.set_result(frame)
    else:
        confirmation.set_exception(DeliveryError(None, frame))
