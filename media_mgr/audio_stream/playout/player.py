"""The task that plays queued media into one session, paced by ``pacer.Pacer``.

What goes on the wire is the dialect's ``PlayEncoder``. Where checkpoints are acknowledged
(voipbit: one ``media.play`` per 20 ms frame, then ``media.checkpoint`` after an item that names
one, ``playedStream`` once heard), the pacer adds its own sync marks and learns from their
acknowledgements. Where they are not (the binary dialect's modules hand each JSON audio message to
the FreeSWITCH app as a file, reference B5, C), an item goes in segments (``streamAudio``,
``playAudio``) paced the same way, and its checkpoint is reported when its estimated playout ends.

The queue holds at most ``limit_queue`` items and refuses more (``QueueFull``); an item's audio is
read from the store a chunk at a time, so memory does not grow with its length. Every send has a
deadline; a module that never acknowledges a sync mark (not bidirectional, or its channel not
playing) ends playback after ``ack_timeout`` instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from media_mgr.audio_stream.dialects.base import PlayEncoder
from media_mgr.audio_stream.playout.pacer import MarkKind, Pacer
from media_mgr.errors import Conflict
from media_mgr.store.errors import StoreUnavailable
from media_mgr.tasks import TaskSet

log = logging.getLogger("media_mgr.audio_stream")

Sender = Callable[[str], Awaitable[None]]
Notify = Callable[[str, dict[str, Any]], None]
# What reading an item's audio raises when the database is slow or away (not the module's fault).
READ_FAILURES: tuple[type[BaseException], ...] = (StoreUnavailable,)


class PlayerState(enum.Enum):
    IDLE = "idle"
    PLAYING = "playing"
    CLOSED = "closed"


class QueueFull(Conflict):
    """The session already has ``limit_queue`` items waiting."""


class PeerStuck(Exception):
    """A send to the module did not complete within its deadline."""


class NotAcknowledged(Exception):
    """The module acknowledged no sync mark for ``ack_timeout``: it is not playing what we send.

    Our own signal, never the builtin ``TimeoutError``: a database command timing out while the item
    is read must not be reported as the module's silence.
    """


@dataclass
class PlayItem:
    id: str
    media_id: str
    checkpoint: str | None
    pcm: AsyncIterator[bytes]  # s16le mono at the player's rate
    duration_ms: int


class Player:
    def __init__(
        self,
        encoder: PlayEncoder,
        rate: int,
        pacer: Pacer,
        lead: Callable[[], float],
        notify: Notify,
        *,
        tasks: TaskSet,
        limit_queue: int,
        send_timeout: float,
        ack_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.encoder = encoder
        self.rate = rate
        self.pacer = pacer
        self.lead = lead
        self.notify = notify
        self.limit_queue = limit_queue
        self.send_timeout = send_timeout
        self.ack_timeout = ack_timeout
        self.clock = clock
        self.tasks = tasks  # where the playing task runs: the service's, stopped with it
        step = encoder.step or pacer.frame
        self.step_bytes = 2 * round(rate * step)
        self.state = PlayerState.IDLE
        self.queue: deque[PlayItem] = deque()
        self.current: PlayItem | None = None
        self.frames_sent = 0
        self.clear_sent_at: float | None = None
        self._send: Sender | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._estimated: deque[tuple[str, float]] = deque()  # unacknowledged: (checkpoint, est. end)
        self._clears: deque[tuple[float, list[str]]] = deque()  # sent, awaiting ack: (when, cancelled)

    # -- connection --------------------------------------------------------------------------------

    def attach(self, send: Sender) -> None:
        self._send = send
        self._connected.set()

    def detach(self) -> None:
        self._send = None
        self._connected.clear()

    # -- commands ----------------------------------------------------------------------------------

    def enqueue(self, item: PlayItem) -> int:
        """Queue ``item``; returns how many items are ahead of it."""
        if self.state is PlayerState.CLOSED:
            raise Conflict("the stream has ended")
        ahead = len(self.queue) + (self.current is not None)
        if len(self.queue) >= self.limit_queue:
            raise QueueFull(
                f"{len(self.queue)} items are already queued on this stream (limit {self.limit_queue})"
            )
        self.queue.append(item)
        if self._task is None or self._task.done():
            self.state = PlayerState.PLAYING
            self._task = self.tasks.spawn(self._run(), name="audio_stream.player")
        return ahead

    async def clear(self) -> list[str]:
        """Barge-in: drop the queue and what the module holds; returns the checkpoints cancelled."""
        current = self.current  # the task forgets it when cancelled
        await self._stop_task()
        cancelled = [m.name for m in self.pacer.clear(self.clock()) if m.kind is MarkKind.CHECKPOINT]
        cancelled += [name for name, _ in self._estimated]
        self._estimated.clear()
        for item in [*([current] if current else []), *self.queue]:
            if item.checkpoint and item.checkpoint not in cancelled:
                cancelled.append(item.checkpoint)
            await _close(item.pcm)
        self.queue.clear()
        self.current = None
        self.state = PlayerState.IDLE
        self.clear_sent_at = self.clock()
        if self.encoder.acknowledged:  # reported when the module says it is done
            self._clears.append((self.clear_sent_at, cancelled))
        if self._send is not None:
            await self._deliver(self.encoder.clear())
        if not self.encoder.acknowledged:
            self.notify("cleared", {"cancelled": cancelled, "latency_ms": None})
        return cancelled

    async def join(self) -> None:
        """Wait until what is queued has been played (or playback stopped)."""
        task = self._task
        if task is not None:
            await asyncio.shield(task)

    async def close(self) -> None:
        await self._stop_task()
        for item in [*([self.current] if self.current else []), *self.queue]:
            await _close(item.pcm)
        self.queue.clear()
        self.current = None
        self.state = PlayerState.CLOSED

    # -- what the module says ----------------------------------------------------------------------

    def on_played(self, name: str) -> bool:
        acks = self.pacer.acked(name, self.clock())
        for ack in acks:
            if ack.mark.kind is MarkKind.CHECKPOINT:
                self.notify("checkpoint", {"checkpoint": ack.mark.name, "late_ms": round(ack.late * 1000)})
        return bool(acks)

    def on_cleared(self) -> None:
        """The module emptied its buffer: the clear it answers, with what that clear cancelled."""
        sent, cancelled = self._clears.popleft() if self._clears else (None, [])
        latency = None if sent is None else round((self.clock() - sent) * 1000)
        self.clear_sent_at = None
        self.notify("cleared", {"cancelled": cancelled, "latency_ms": latency})

    # -- the task ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while self.queue:
                item = self.current = self.queue.popleft()
                try:
                    await self._play(item)
                finally:
                    await _close(item.pcm)
                    self.current = None
            while self._estimated:  # unacknowledged: report the last checkpoints when they are due
                await self._report_estimated(wait=True)
        except PeerStuck:
            log.warning(
                "audio_stream playback stopped: the module stopped reading", extra={"queued": len(self.queue)}
            )
        except NotAcknowledged:
            log.warning(
                "audio_stream playback stopped: the module never acknowledged playout (is the stream "
                "bidirectional, its track inbound, its channel playing?)",
                extra={"queued": len(self.queue)},
            )
            self.notify("play_failed", {"reason": "no_acknowledgement"})
        except READ_FAILURES as exc:
            log.warning(
                "audio_stream playback stopped: the media could not be read from the store",
                extra={"queued": len(self.queue), "error": repr(exc)},
            )
            self.notify("play_failed", {"reason": "store_unavailable"})
        finally:
            if self.state is PlayerState.PLAYING:
                self.state = PlayerState.IDLE

    async def _play(self, item: PlayItem) -> None:
        buf = bytearray()
        first = True
        async for pcm in item.pcm:
            buf += pcm
            while len(buf) >= self.step_bytes:
                await self._send_audio(bytes(buf[: self.step_bytes]), item, continuing=not first, last=False)
                del buf[: self.step_bytes]
                first = False
        if buf or first:
            frame = 2 * round(self.rate * self.pacer.frame)
            padded = bytes(buf) + bytes(
                -len(buf) % frame
            )  # whole frames: the module holds back a partial one
            await self._send_audio(padded, item, continuing=not first, last=True)
        elif item.checkpoint is not None:
            await self._checkpoint(item.checkpoint)

    async def _send_audio(self, pcm: bytes, item: PlayItem, *, continuing: bool, last: bool) -> None:
        if not pcm:
            return
        await self._wait_turn()
        seconds = len(pcm) / (2 * self.rate)
        mark = item.checkpoint if last else None
        acknowledged = self.encoder.acknowledged
        await self._deliver(self.encoder.audio(pcm, self.rate, None if acknowledged else mark))
        self.pacer.sent(self.clock(), seconds, continuing=continuing)
        self.frames_sent += 1
        if not acknowledged:
            if mark is not None:
                self._estimated.append((mark, self.pacer.est_end))
            return
        if self.pacer.sync_due():
            await self._deliver(self.encoder.checkpoint(self.pacer.mark(MarkKind.SYNC).name))
        if mark is not None:
            await self._checkpoint(mark)

    async def _checkpoint(self, name: str) -> None:
        if self.encoder.acknowledged:
            self.pacer.mark(MarkKind.CHECKPOINT, name)
            await self._deliver(self.encoder.checkpoint(name))
        else:
            self._estimated.append((name, self.pacer.est_end))

    async def _wait_turn(self) -> None:
        held_since: float | None = None
        while True:
            await self._connected.wait()  # our own state: the module reconnects, or the session ends
            await self._report_estimated(wait=False)
            now = self.clock()
            wait = self.pacer.wait(now, self.lead())
            if wait is None:
                held_since = held_since if held_since is not None else now
                if now - held_since > self.ack_timeout:
                    raise NotAcknowledged
                await asyncio.sleep(self.pacer.frame)
                continue
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def _report_estimated(self, *, wait: bool) -> None:
        while self._estimated:
            name, due = self._estimated[0]
            delay = due - self.clock()
            if delay > 0:
                if not wait:
                    return
                await asyncio.sleep(delay)
            self._estimated.popleft()
            self.notify("checkpoint", {"checkpoint": name, "late_ms": 0, "estimated": True})

    async def _deliver(self, message: str) -> None:
        while True:
            await self._connected.wait()
            send = self._send
            assert send is not None
            try:
                async with asyncio.timeout(self.send_timeout):
                    await send(message)
                return
            except TimeoutError:
                raise PeerStuck from None
            except ConnectionError:
                if self._send is send:  # the socket went; the session will attach the next one
                    self.detach()

    async def _stop_task(self) -> None:
        """Cancel the playing task and wait for it; a cancellation of our caller goes on up."""
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if me is not None and me.cancelling():
                raise  # our caller is being cancelled too: not ours to swallow

    def public(self, now: float) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "queued": len(self.queue) + (self.current is not None),
            "playing_media_id": self.current.media_id if self.current else None,
            "buffered_ms": round(self.pacer.buffered(now) * 1000),
            "frames_sent": self.frames_sent,
            "starved": self.pacer.starved,
            "slips": self.pacer.slips,
            "pending_checkpoints": [m.name for m in self.pacer.marks if m.kind is MarkKind.CHECKPOINT],
        }


async def _close(pcm: AsyncIterator[bytes]) -> None:
    closer = getattr(pcm, "aclose", None)
    if closer is not None:
        with contextlib.suppress(Exception):
            await closer()
