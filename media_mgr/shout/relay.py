"""One relay: our audio pushed as a source to an external Icecast mount, through libshout (python-shout).

Each relay runs libshout in a thread of its own (bounded by the manager's relay limit), fed from the
event loop through a ``Handoff``: a small bounded queue the loop side never blocks on. The loop
waits for room on an asyncio event the thread sets when it takes a chunk, so no relay ever holds a
thread of the default executor (file reads, probing and transcoding run there). libshout runs
non-blocking, so the thread never hangs on a dead server; it paces to real time with ``shout_delay``
and, when Icecast goes away, reconnects with exponential back-off (1 s doubling to ``backoff_max``).
The thread waits on a condition for audio and on the stop event for pacing and back-off; the one
timed check left is libshout's non-blocking connect, which has no descriptor to wait on.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from media_mgr.isotime import iso_from_epoch
from media_mgr.live.cursor import ListenerCursor
from media_mgr.live.mount import Mount

log = logging.getLogger("media_mgr.shout.relay")

QUEUE_CHUNKS = 32  # the thread's backlog: at most this many chunks of a few KiB
CONNECT_TIMEOUT = 10.0
CONNECT_CHECK = 0.05  # libshout's non-blocking connect is checked this often (it has no fd to wait on)
IDLE_CLOSE = 5.0  # no audio this long (the live source left): let go of Icecast until it is back
SHOUTERR_CONNECTED, SHOUTERR_BUSY, SHOUTERR_RETRY = -7, -10, -13


class Handoff:
    """Chunks from the event loop to one relay thread, at most ``limit`` waiting."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int = QUEUE_CHUNKS) -> None:
        self._loop = loop
        self._limit = limit
        self._items: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._room = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def full(self) -> bool:
        with self._cond:
            return len(self._items) >= self._limit

    def offer(self, data: bytes) -> bool:
        """Loop side, never blocks: False when there is no room (or the relay stopped)."""
        with self._cond:
            if self._closed or len(self._items) >= self._limit:
                return False
            self._items.append(data)
            self._cond.notify()
            return True

    async def put(self, data: bytes) -> bool:
        """Loop side: wait (on the loop, not in a thread) for room; False if the relay stopped."""
        while not self.offer(data):
            if self._closed:
                return False
            self._room.clear()
            if self.offer(data):
                break
            await self._room.wait()
        return True

    def take(self, timeout: float | None) -> bytes | None:
        """Thread side: the next chunk; None once closed or after ``timeout`` seconds without one."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout) or self._closed:
                return None
            data = self._items.popleft()
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting for room
            self._loop.call_soon_threadsafe(self._room.set)
        return data

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()
        self._room.set()


class RelaySink:
    """The relay as a listener of a live mount; ``send`` never blocks (``ready`` said there is room)."""

    def __init__(self, handoff: Handoff, on_close: Callable[[str], None]) -> None:
        self.handoff = handoff
        self.closed = False
        self._on_close = on_close

    def ready(self) -> bool:
        return not self.closed and not self.handoff.full()

    def send(self, data: bytes | memoryview) -> None:
        self.handoff.offer(bytes(data))

    def close(self, reason: str) -> None:
        self.closed = True
        self._on_close(reason)


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
        loop = asyncio.get_running_loop()
        self.handoff = Handoff(loop)
        self.stopping = threading.Event()
        self.finished: asyncio.Future[None] = loop.create_future()
        self.thread = threading.Thread(target=self._run, name=f"relay {relay_id}", daemon=True)
        self.sink: RelaySink | None = None
        self.cursor: ListenerCursor | None = None
        self.source: Mount | None = None  # the mount (ours, or a mirror of another instance's) it reads
        self.feeder: asyncio.Task[None] | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": {"mount": self.mount} if self.mount else {"media_id": self.media_id, "loop": True},
            "target": {"host": self.host, "port": self.port, "mount": self.target_mount, "user": self.user},
            "state": self.state,
            "bytes_sent": self.bytes_sent,
            "queued_chunks": len(self.handoff),
            "connects": self.connects,
            "last_error": self.last_error,
            "started_at": iso_from_epoch(self.started),
        }

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Tell the thread to end; ``finished`` resolves once it has closed its Icecast connection."""
        self.stopping.set()
        self.handoff.close()

    # -- the libshout thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            self.state = "stopped"
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self.finished.get_loop().call_soon_threadsafe(self._done)

    def _done(self) -> None:
        if not self.finished.done():
            self.finished.set_result(None)

    def _serve(self) -> None:
        shout: Any = importlib.import_module("shout")  # python-shout: the optional "relay" extra
        backoff = 1.0
        while not self.stopping.is_set():
            first = self.handoff.take(None)
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

    def _open(self, shout: Any) -> Any:
        conn = shout.Shout()
        conn.host, conn.port, conn.mount = self.host, self.port, self.target_mount
        conn.user, conn.password = self.user, self._password
        conn.protocol, conn.format, conn.nonblocking = "http", "mp3", True
        conn.name, conn.description = "media-mgr relay", f"relay {self.id}"
        conn.open()
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while (status := conn.get_connected()) in (SHOUTERR_BUSY, SHOUTERR_RETRY):
            if time.monotonic() > deadline or self.stopping.wait(CONNECT_CHECK):
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
            data = self.handoff.take(IDLE_CLOSE)
