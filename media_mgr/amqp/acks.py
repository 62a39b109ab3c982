"""Settling one consumer channel's deliveries: acknowledgements in batches, rejections at once.

An ack per delivery is a frame to build, write and have the broker process. Deliveries are settled
out of order (each request waits for its own reply's confirm), so :class:`Settlement` remembers which
are done and, ``interval`` (5 ms) after the first settlement since the last batch, acknowledges with
``multiple=True`` up to the newest delivery whose every predecessor is settled: one frame for all the
requests answered meanwhile (a delivery arrives per loop turn, so a flush per turn batched little).
Those 5 ms only delay freeing prefetch slots (10 of 1000 at 2000 requests/s), never a reply. Nothing is
acknowledged before its own settlement asked for it, so a lost channel loses nothing acknowledged.

Rejections (with or without requeue) go out one by one as they happen: an ack with ``multiple=True``
covers only deliveries still outstanding, and its own tag must be one of them (RabbitMQ closes the
channel on an unknown tag), so it is always the newest *ack-wanted* tag of the settled prefix.

A slow request at the head (a TTS synthesis) must not hold the acks behind it until the prefetch is
exhausted: beyond ``backlog`` settled deliveries waiting behind an unsettled one, those are acknowledged
one by one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from typing import Final, Literal

from aiormq.abc import AbstractChannel

log = logging.getLogger("media_mgr.amqp")

How = Literal["ack", "reject", "requeue"]
_OPEN: Final = 0
_ACK: Final = 1
_REJECTED: Final = 2


class Settlement:
    """The deliveries of one channel (tags increase with arrival), each ``_OPEN`` until settled."""

    def __init__(self, channel: AbstractChannel, backlog: int = 256, interval: float = 0.005) -> None:
        self.channel = channel
        self.backlog = backlog
        self.interval = interval
        self._state: dict[int, int] = {}  # insertion order is tag order: the channel's delivery order
        self._flush_due = False
        self._settled = 0  # entries of ``_state`` settled but still there (behind an open one)
        self._sending: set[asyncio.Future[None]] = set()

    def __len__(self) -> int:
        """Deliveries received and not yet acknowledged or rejected on the wire."""
        return len(self._state)

    def received(self, tag: int) -> None:
        self._state[tag] = _OPEN

    def settle(self, tag: int, how: How) -> None:
        """Ack (in the next batch) or reject now. A channel that is gone makes it a no-op: the
        broker requeues whatever it had not seen acknowledged."""
        if self._state.get(tag) != _OPEN:
            return
        self._settled += 1
        if how == "ack":
            self._state[tag] = _ACK
        else:
            self._state[tag] = _REJECTED
            self._send(self.channel.basic_reject(tag, requeue=how == "requeue"))
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_later(self.interval, self._flush)

    def _flush(self) -> None:
        if not self._flush_due:
            return  # ``drain`` came first
        self._flush_due = False
        state = self._state
        prefix: list[int] = []
        newest_ack = 0
        for tag, settled in state.items():
            if settled == _OPEN:
                break
            prefix.append(tag)
            if settled == _ACK:
                newest_ack = tag
        for tag in prefix:
            del state[tag]
        self._settled -= len(prefix)
        if newest_ack:
            self._send(self.channel.basic_ack(newest_ack, multiple=True))
        if self._settled > self.backlog:
            for tag in [t for t, settled in state.items() if settled != _OPEN]:
                if state.pop(tag) == _ACK:
                    self._send(self.channel.basic_ack(tag))
            self._settled = 0

    async def drain(self) -> None:
        """Settle now what is settled, and return once those frames were written (before a close)."""
        if self._flush_due:
            self._flush()
        if self._sending:
            await asyncio.wait(set(self._sending))

    def _send(self, frame: Awaitable[None]) -> None:
        """Write a settlement frame in the background; ``drain`` waits for those under way."""
        if self.channel.is_closed:
            if isinstance(frame, Coroutine):
                frame.close()
            return
        task = asyncio.ensure_future(frame)
        self._sending.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Future[None]) -> None:
        self._sending.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.debug("could not settle deliveries", extra={"error": repr(exc)})
