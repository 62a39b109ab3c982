"""A mount read by a coroutine (how another instance of the fleet listens): burst, then real time,
a bounded queue of its own, held back in the mount while the reader is busy, ended with the source,
dropped when too slow, detached when the reader leaves."""

from __future__ import annotations

import asyncio

from media_mgr.live.feed import MountFeed
from media_mgr.live.mount import Mount
from media_mgr.live.registry import MountRegistry


def chunks(n: int, size: int = 1000) -> list[bytes]:
    return [bytes([i % 256]) * size for i in range(n)]


async def read_all(feed: MountFeed) -> bytes:
    out = bytearray()
    async for piece in feed:
        out += piece
    return bytes(out)


async def test_the_feed_gets_the_burst_then_what_follows_and_ends_with_the_source() -> None:
    mount = Mount("/m.mp3", queue_bytes=10_000, burst_bytes=2_500)
    data = chunks(8)
    for c in data[:5]:
        mount.publish(c)
    feed = MountFeed(mount, limit_bytes=1_500)  # smaller than the burst: the rest waits in the mount
    reader = asyncio.create_task(read_all(feed))
    await asyncio.sleep(0)
    for c in data[5:]:
        mount.publish(c)
        await asyncio.sleep(0)
    mount.end()
    got = await reader
    assert got == b"".join(data[2:])  # three chunks of burst (2 500 bytes, from a chunk start), then all
    assert mount.listeners == 0


async def test_a_feed_that_does_not_read_is_dropped_as_slow_and_its_memory_stays_bounded() -> None:
    mount = Mount("/m.mp3", queue_bytes=5_000, burst_bytes=0)
    feed = MountFeed(mount, limit_bytes=2_000)
    for c in chunks(20):
        mount.publish(c)
    assert mount.slow_drops == 1 and mount.listeners == 0
    assert feed.sink.reason == "slow"
    got = await read_all(feed)
    assert len(got) <= 2_000  # what it had taken before it was dropped, no more


async def test_a_reader_that_leaves_detaches_its_cursor() -> None:
    registry = MountRegistry(queue_bytes=10_000, burst_bytes=0)
    mount = registry.claim("/m.mp3")
    feed = MountFeed(mount)
    pieces = aiter(feed)
    mount.publish(b"x" * 100)
    assert await anext(pieces) == b"x" * 100
    assert mount.listeners == 1
    await pieces.aclose()  # type: ignore[attr-defined]
    assert mount.listeners == 0
    registry.release(mount)
