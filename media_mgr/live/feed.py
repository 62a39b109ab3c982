"""A live mount read as a stream of bytes by a coroutine: how another instance listens to ours.

The feed is one more listener cursor on the ``Mount`` (burst on connect, then real time), whose
sink is a small queue: at most ``limit_bytes`` wait, past that the sink says it is not ready and
the cursor stays behind in the mount's own queue, pumped again as the reader drains. A reader that
falls further behind than the mount's queue is dropped as "slow", as any listener is.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from media_mgr.live.cursor import ListenerCursor
from media_mgr.live.mount import Mount

FEED_LIMIT_BYTES = 64 * 1024


class FeedSink:
    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.reason: str | None = None  # why it ended ("end", "slow"), once it has
        self._items: deque[bytes] = deque()
        self._queued = 0
        self._wake = asyncio.Event()

    def ready(self) -> bool:
        return self.reason is None and self._queued < self.limit_bytes

    def send(self, data: bytes | memoryview) -> None:
        self._items.append(bytes(data))
        self._queued += len(data)
        self._wake.set()

    def close(self, reason: str) -> None:
        self.reason = reason
        self._wake.set()

    async def take(self) -> bytes | None:
        """What waits (all of it, joined), or None once the stream ended and nothing is left."""
        while not self._items:
            if self.reason is not None:
                return None
            self._wake.clear()
            await self._wake.wait()
        data = b"".join(self._items)
        self._items.clear()
        self._queued = 0
        return data


class MountFeed:
    """``async for piece in MountFeed(mount)``: the mount's audio from burst-on-connect on, until the
    source ends (or this reader was too slow); ``close()`` detaches it (the reader left)."""

    def __init__(self, mount: Mount, limit_bytes: int = FEED_LIMIT_BYTES) -> None:
        self.mount = mount
        self.sink = FeedSink(limit_bytes)
        self.cursor: ListenerCursor = mount.attach(self.sink)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._pieces()

    async def _pieces(self) -> AsyncIterator[bytes]:
        try:
            while (data := await self.sink.take()) is not None:
                if not self.cursor.closed:
                    self.mount.pump(self.cursor)  # room again: what waited in the mount's queue
                yield data
        finally:
            self.close()

    def close(self) -> None:
        if not self.cursor.closed:
            self.mount.detach(self.cursor)
