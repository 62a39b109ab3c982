"""``async with ShoutServer(...)`` in process, against the real PostgreSQL and a libshout source: leaving
the block stops accepting, ends the source (its recording ``interrupted``, end reason ``shutdown``,
its audio kept), ends the listener's stream, leaves no task behind and takes the /metrics collector
away again."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from prometheus_client import CollectorRegistry
from shout_peers import ShoutUrl, kill, push

from media_mgr.live.registry import MountRegistry
from media_mgr.media.recording_urls import RecordingUrls, RecordingUrlsConfig
from media_mgr.recording.config import RecorderConfig
from media_mgr.recording.recorder import Recorder
from media_mgr.shout.auth import SourceAuth
from media_mgr.shout.config import ShoutConfig
from media_mgr.shout.server import ShoutServer
from media_mgr.store.blobs import BlobStore
from media_mgr.store.recordings import RecordingStore

from sounds import raw_mp3


@pytest.fixture
async def recorder(database_url: str, server: object) -> AsyncIterator[Recorder]:
    # ``server`` has applied the migrations to the run's database.
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    rec = Recorder(RecordingStore(pool, BlobStore(pool, 256 * 1024)), RecorderConfig(flush_seconds=0.4))
    await rec.start()
    yield rec
    await rec.stop()
    await pool.close()


async def progress(source: subprocess.Popen[bytes], until_bytes: int) -> None:
    """Read the pusher's "open ok" then "sent N T" lines until N reaches ``until_bytes``."""
    assert source.stdout is not None
    while True:
        line = (await asyncio.to_thread(source.stdout.readline)).split()
        assert line, "the source ended early"
        if line[0] == b"sent" and int(line[1]) >= until_bytes:
            return


async def test_leaving_the_server_ends_sources_and_listeners_and_stops_accepting(
    recorder: Recorder, tmp_path: Path
) -> None:
    raw_mp3(tmp_path / "long.mp3", seconds=30.0)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    mount = f"/exit-{time.monotonic_ns()}.mp3"
    metrics = CollectorRegistry()
    registry = MountRegistry(queue_bytes=512 * 1024, burst_bytes=64 * 1024)
    tokens = RecordingUrls(RecordingUrlsConfig("127.0.0.1", 0, port, 60, 60), b"k" * 32)
    auth = SourceAuth(tokens, "hackme")
    url = ShoutUrl("source", "hackme", "127.0.0.1", port, mount)
    source: subprocess.Popen[bytes] | None = None
    try:
        async with ShoutServer(ShoutConfig(), sock, recorder=recorder, registry=registry, auth=auth,
                               metrics=metrics) as shout:  # fmt: skip
            source = push(url, tmp_path / "long.mp3", pace=True)
            await progress(source, 4000)  # two seconds of audio streamed
            assert metrics.get_sample_value("media_mgr_shout_sources") == 1
            (session,) = shout.state.sources
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {mount} HTTP/1.0\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.0 200 OK")
        async with asyncio.timeout(10):
            heard = await reader.read()  # to EOF: the stream ended with the server
        writer.close()
        assert heard  # the burst, at least
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)  # not accepting any more
        assert len(shout.state.admitting) == len(shout.state.streaming) == 0
        assert metrics.get_sample_value("media_mgr_shout_sources") is None  # collector unregistered
        assert registry.get(mount) is None
        done = await recorder.get(session.ingest.id)
        assert (done.state, done.end_reason) == ("interrupted", "shutdown")
        assert done.size >= 4000  # what had arrived is kept
    finally:
        if source is not None:
            kill(source)
