"""Relays to a real icecast2 never hold a thread of the default executor: with many relays streaming
a looped item (their queues full, so every feeder waits for room), the loop's default executor still
runs other work (file reads, probing, transcoding) at once; Icecast's listener still hears the
relayed frames, byte for byte, and they decode; leaving the manager ends every relay's thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from shout_peers import Icecast

from media_mgr.live.registry import MountRegistry
from media_mgr.shout.relay import QUEUE_CHUNKS
from media_mgr.shout.relays import RelayConfig, RelayManager

from sounds import decode, raw_mp3

RELAYS = 16
READS = 20  # the old feeders each kept a put (up to a second) queued in the default executor: ~1 s a read


@pytest.fixture
def icecast() -> Iterator[Icecast]:
    ice = Icecast().start()
    yield ice
    ice.close()


async def listen(ice: Icecast, mount: str, seconds: float) -> bytes:
    """What curl, as a listener of the Icecast mount, gets in ``seconds``."""
    curl = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", str(seconds), f"http://127.0.0.1:{ice.port}{mount}",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await curl.communicate()
    return out


def full(relay: dict[str, Any]) -> bool:
    return bool(relay["state"] == "streaming" and relay["queued_chunks"] >= QUEUE_CHUNKS - 1)


async def read_in_pieces(path: Path, piece: int) -> bytes:
    """A file read as the service reads one (a download, a probe): one default-executor call per piece."""
    loop = asyncio.get_running_loop()
    with path.open("rb") as f:
        pieces = []
        while chunk := await loop.run_in_executor(None, f.read, piece):
            pieces.append(chunk)
    return b"".join(pieces)


async def relay_a_loop_while_the_executor_works(ice: Icecast, path: Path) -> tuple[bytes, bytes]:
    item = path.read_bytes()
    # One default-executor thread stands in for the few of a busy service; a loop of its own (asyncio.run).
    asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(1))

    async def media(media_id: str) -> AsyncIterator[bytes]:
        yield item

    registry = MountRegistry(queue_bytes=512 * 1024, burst_bytes=64 * 1024)
    async with RelayManager(RelayConfig(limit=RELAYS), registry, media) as relays:
        added = [
            await relays.add(mount=None, media_id="moh", host="127.0.0.1", port=ice.port,
                             target_mount=f"/loop{i}.mp3", user="source", password=ice.source_password)
            for i in range(RELAYS)
        ]  # fmt: skip
        async with asyncio.timeout(30):  # every relay streams, its queue full: each feeder waits for room
            while not all(full(relays.get(r["id"])) for r in added):
                await asyncio.sleep(0.1)
        try:  # generous: twenty reads of a small file take microseconds each
            async with asyncio.timeout(5):
                read = await read_in_pieces(path, len(item) // READS + 1)
        except TimeoutError:
            read = b""
        heard = await listen(ice, "/loop0.mp3", 3.0)
    assert not [t for t in threading.enumerate() if t.name.startswith("relay ")]  # exit ended them all
    return read, heard


def test_relays_leave_the_default_executor_free_and_are_heard_at_icecast(
    icecast: Icecast, tmp_path: Path
) -> None:
    item = raw_mp3(tmp_path / "moh.mp3", seconds=1.0)
    read, heard = asyncio.run(relay_a_loop_while_the_executor_works(icecast, tmp_path / "moh.mp3"))
    assert read == item  # read while the relays ran, in pieces, without waiting behind a relay
    assert len(heard) > 2 * len(item)  # the burst and real time: the item more than once, so it loops
    assert heard in item * (len(heard) // len(item) + 2)  # Icecast passed our frames on untouched
    assert len(decode(heard)) >= 2 * 8000  # and they play: at least two seconds of 8 kHz audio
