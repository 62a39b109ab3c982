"""Relays: our audio pushed as a source to an external Icecast mount, through libshout (python-shout).

Fan-out to many listeners belongs to Icecast. A relay takes either a live mount of ours (it is one
more listener cursor on the mount: dropped if Icecast cannot keep up, then re-attached at the live
edge) or a stored item played in a loop (music on hold, transcoded to MP3 once by the variant cache),
and feeds libshout in a thread of its own through a small bounded queue. libshout runs non-blocking,
so the thread never hangs on a dead server; it paces to real time with ``shout_delay`` and, when
Icecast goes away, reconnects with exponential back-off (1 s doubling to ``backoff_max``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import queue
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from media_mgr.errors import NotFound, Unavailable
from media_mgr.live.cursor import ListenerCursor
from media_mgr.live.registry import MountRegistry, check_mount
from media_mgr.media.library import MediaLibrary
from media_mgr.media.variants import VariantCache

log = logging.getLogger("media_mgr.shout.relay")

QUEUE_CHUNKS = 32  # the thread's backlog: at most this many chunks of a few KiB
CONNECT_TIMEOUT = 10.0
IDLE_CLOSE = 5.0  # no audio this long (the live source left): let go of Icecast until it is back
SHOUTERR_CONNECTED, SHOUTERR_BUSY, SHOUTERR_RETRY = -7, -10, -13

MediaReader = Callable[[str], AsyncIterator[bytes]]


def media_reader(library: MediaLibrary, variants: VariantCache) -> MediaReader:
    """A stored item's bytes as MP3 (transcoded once by the variant cache if it is a WAV)."""

    async def read(media_id: str) -> AsyncIterator[bytes]:
        item = await library.get(media_id)
        content = await variants.content(item, "mp3", None)
        async for piece in variants.read(content):
            yield piece

    return read


class RelaySink:
    """The relay as a listener of a live mount; ``send`` never blocks (the queue has room)."""

    def __init__(self, q: queue.Queue[bytes]) -> None:
        self.q = q
        self.closed = False

    def ready(self) -> bool:
        return not self.closed and not self.q.full()

    def send(self, data: bytes | memoryview) -> None:
        with contextlib.suppress(queue.Full):
            self.q.put_nowait(bytes(data))

    def close(self, reason: str) -> None:
        self.closed = True


class Relay:
    def __init__(
        self, relay_id: str, *, mount: str | None, media_id: str | None, host: str, port: int,
        target_mount: str, user: str, password: str, backoff_max: float,
    ) -> None:  # fmt: skip
        self.id = relay_id
        self.mount, self.media_id = mount, media_id
        self.host, self.port, self.target_mount, self.user = host, port, target_mount, user
        self._password = password
        self.backoff_max = backoff_max
        self.state = "waiting"
        self.bytes_sent = 0
        self.connects = 0
        self.last_error: str | None = None
        self.started = time.time()
        self.q: queue.Queue[bytes] = queue.Queue(QUEUE_CHUNKS)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"relay {relay_id}", daemon=True)
        self.sink: RelaySink | None = None
        self.cursor: ListenerCursor | None = None
        self.feeder: asyncio.Task[None] | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": {"mount": self.mount} if self.mount else {"media_id": self.media_id, "loop": True},
            "target": {"host": self.host, "port": self.port, "mount": self.target_mount, "user": self.user},
            "state": self.state,
            "bytes_sent": self.bytes_sent,
            "connects": self.connects,
            "last_error": self.last_error,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
        }

    # -- the libshout thread -------------------------------------------------------------------------

    def _run(self) -> None:
        shout: Any = importlib.import_module("shout")  # python-shout: the optional "relay" extra
        backoff = 1.0
        while not self.stopping.is_set():
            first = self._next(None)
            if first is None:
                continue
            conn: Any = None
            try:
                self.state = "connecting"
                conn = self._open(shout)
                self.state, backoff = "streaming", 1.0
                self.connects += 1
                log.info("relay connected", extra={"relay": self.id, "target": f"{self.host}:{self.port}"})
                self._stream(conn, first)
                self.state = "waiting"
            except (shout.ShoutException, TimeoutError, OSError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.state = "backoff"
                extra = {"relay": self.id, "error": self.last_error, "retry_in": backoff}
                log.warning("relay lost its Icecast; retrying", extra=extra)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
        self.state = "stopped"

    def _open(self, shout: Any) -> Any:
        conn = shout.Shout()
        conn.host, conn.port, conn.mount = self.host, self.port, self.target_mount
        conn.user, conn.password = self.user, self._password
        conn.protocol, conn.format, conn.nonblocking = "http", "mp3", True
        conn.name, conn.description = "media-mgr relay", f"relay {self.id}"
        conn.open()
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while (status := conn.get_connected()) in (SHOUTERR_BUSY, SHOUTERR_RETRY):
            if time.monotonic() > deadline or self.stopping.wait(0.05):
                raise TimeoutError(f"no answer from {self.host}:{self.port} in {CONNECT_TIMEOUT:g} s")
        if status != SHOUTERR_CONNECTED:
            raise shout.ShoutException(f"could not connect (libshout error {status})")
        return conn

    def _stream(self, conn: Any, data: bytes | None) -> None:
        while data is not None and not self.stopping.is_set():
            conn.send(data)
            self.bytes_sent += len(data)
            delay = conn.delay() / 1000  # libshout's real-time pacing, from the MP3 frames sent
            if delay > 0 and self.stopping.wait(min(delay, 1.0)):
                return
            data = self._next(IDLE_CLOSE)

    def _next(self, idle: float | None) -> bytes | None:
        """The next chunk; None when stopping, or after ``idle`` seconds without audio."""
        waited = 0.0
        while not self.stopping.is_set():
            try:
                return self.q.get(timeout=0.25)
            except queue.Empty:
                waited += 0.25
                if idle is not None and waited >= idle:
                    return None
        return None


class RelayManager:
    """``POST/GET/DELETE /v1/relays`` (the ``RelayControl`` of http/recordings.py)."""

    def __init__(
        self, registry: MountRegistry, read_media: MediaReader, *, backoff_max: float = 30.0, limit: int = 64
    ) -> None:
        self.registry = registry
        self.read_media = read_media
        self.backoff_max = backoff_max
        self.limit = limit
        self._relays: dict[str, Relay] = {}
        self._watch: asyncio.Task[None] | None = None

    async def add(
        self, *, mount: str | None, media_id: str | None, host: str, port: int, target_mount: str, user: str,
        password: str,
    ) -> dict[str, Any]:  # fmt: skip
        try:
            importlib.import_module("shout")
        except ImportError:
            raise Unavailable("relays need python-shout: pip install 'kazoo-media-mgr[relay]'") from None
        if len(self._relays) >= self.limit:
            raise Unavailable(f"at most {self.limit} relays run at once")
        if mount is not None:
            check_mount(mount)
        relay = Relay(
            secrets.token_hex(8), mount=mount, media_id=media_id, host=host, port=port,
            target_mount=target_mount, user=user, password=password, backoff_max=self.backoff_max,
        )  # fmt: skip
        if media_id is not None:
            first = self.read_media(media_id)
            try:
                head = await anext(first)  # 404 now rather than a relay that never plays
            except StopAsyncIteration:
                raise NotFound(f"media {media_id} has no content") from None
            relay.feeder = asyncio.create_task(self._loop_media(relay, head, first))
        self._relays[relay.id] = relay
        relay.thread.start()
        if self._watch is None:
            self._watch = asyncio.create_task(self._watch_mounts())
        log.info("relay added", extra=relay.public())
        return relay.public()

    def list(self) -> list[dict[str, Any]]:
        return [r.public() for r in self._relays.values()]

    def get(self, relay_id: str) -> dict[str, Any]:
        return self._get(relay_id).public()

    async def remove(self, relay_id: str) -> None:
        relay = self._get(relay_id)
        del self._relays[relay_id]
        await self._stop(relay)

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        relays, self._relays = list(self._relays.values()), {}
        await asyncio.gather(*(self._stop(r) for r in relays), return_exceptions=True)

    def _get(self, relay_id: str) -> Relay:
        relay = self._relays.get(relay_id)
        if relay is None:
            raise NotFound(f"no relay {relay_id}")
        return relay

    async def _stop(self, relay: Relay) -> None:
        relay.stopping.set()
        if relay.feeder is not None:
            relay.feeder.cancel()
            await asyncio.gather(relay.feeder, return_exceptions=True)
        self._detach(relay)
        await asyncio.to_thread(relay.thread.join, 5.0)

    def _detach(self, relay: Relay) -> None:
        if relay.cursor is not None:
            mount = self.registry.get(relay.mount or "")
            if mount is not None:
                mount.detach(relay.cursor)
        relay.cursor = relay.sink = None

    async def _watch_mounts(self) -> None:
        """Attach live relays to their mount whenever it has a source (again)."""
        while True:
            for relay in list(self._relays.values()):
                if relay.mount is None or (relay.sink is not None and not relay.sink.closed):
                    continue
                mount = self.registry.get(relay.mount)
                if mount is not None:
                    relay.sink = RelaySink(relay.q)
                    relay.cursor = mount.attach(relay.sink)
            await asyncio.sleep(0.5)

    async def _loop_media(self, relay: Relay, head: bytes, rest: AsyncIterator[bytes]) -> None:
        """Feed a stored item to the thread, over and over, as fast as the queue takes it."""
        pieces: AsyncIterator[bytes] = rest
        chunk: bytes | None = head
        while True:
            if chunk is not None:
                for i in range(0, len(chunk), 4096):
                    await _put(relay.q, chunk[i : i + 4096])
            try:
                chunk = await anext(pieces)
            except StopAsyncIteration:
                pieces, chunk = self.read_media(relay.media_id or ""), None
            except Exception as exc:  # deleted meanwhile, database away: say so, try again later
                relay.last_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "relay cannot read its media", extra={"relay": relay.id, "error": relay.last_error}
                )
                await asyncio.sleep(5)
                pieces, chunk = self.read_media(relay.media_id or ""), None


async def _put(q: queue.Queue[bytes], piece: bytes) -> None:
    """Wait (off the loop) until the libshout thread has room; cancellable between tries."""
    while True:
        try:
            await asyncio.to_thread(q.put, piece, True, 1.0)
            return
        except queue.Full:
            continue
