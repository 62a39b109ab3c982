"""Frames taken from an aiormq channel before its reader task: the one hook both taps share.

aiormq's connection reader hands each frame of a channel to that channel with
``await channel.frames.put((weight, frame))``; the channel's reader task then takes it from the queue
and dispatches it. :func:`divert` shadows ``put`` on that one queue (an instance attribute, so no other
channel is touched, and the reader task, blocked in ``get``, is not disturbed): a frame ``take`` accepts
is used in the call that read it from the socket, every other frame goes on to aiormq as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiormq


def divert(channel: aiormq.Channel, take: Callable[[Any], bool]) -> None:
    """Frames for which ``take`` returns True never reach ``channel``'s reader; ``take`` must not raise."""
    queue: asyncio.Queue[Any] = channel.frames
    pass_on = queue.put

    async def put(item: tuple[int, Any]) -> None:
        if not take(item[1]):
            await pass_on(item)

    queue.put = put  # type: ignore[method-assign]
