"""One live mount: the single bounded queue of a source's audio, and the listeners reading it.

Icecast's model (source.c, format.c): the source appends whole MP3 frames; every listener is a
cursor into the same queue. A new listener starts ``burst_bytes`` behind the live edge, on a chunk
boundary (chunks hold whole frames, so that is a sync point), then follows in real time. The queue
never holds more than ``queue_bytes``: when it must shrink past a listener still reading the oldest
chunk, that listener has fallen too far behind and is dropped (counted in ``slow_drops``). Nothing
a listener does can slow the source: ``publish`` only writes to sinks that say they are ready.

The listener interface (a socket here; a relay, or a mount relayed to another instance, alike):
``attach(sink)`` with a ``live.cursor.Sink`` returns its cursor; from then on the mount calls
``sink.send(chunk)`` with each chunk whole (the very bytes object the source published, shared by
every listener: never copy it, never change it) while ``sink.ready()`` is true; when the sink's
buffer drained after saying it was not ready, its owner calls ``pump(cursor)`` to catch up; when
it leaves, ``detach(cursor)``. The mount calls ``sink.close(reason)`` when the stream ends
(``"end"``) or the listener fell out of the queue (``"slow"``); it is detached by then.

The fan-out is the hot path (1000 listeners of one mount: 10 000 sends a second). A socket
listener gives ``attach`` its transport's ``write`` as ``direct`` and calls ``stalled(cursor)`` when
the socket stops taking bytes (``pause_writing``) or closes. While it has had everything and takes
bytes, it is in the direct set: ``publish`` hands the new chunk to each of those writes and does
nothing else per listener (no Python call, no cursor touched; at 1000 listeners the calls and the
cursors' updates were most of the server's user time, beside Icecast's C). Its cursor is settled
when it leaves the set. Other sinks (a relay, a mirror) are asked ``ready()`` per chunk as before.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from media_mgr.isotime import iso_from_epoch
from media_mgr.live.cursor import ListenerCursor, Sink


class Mount:
    def __init__(self, name: str, *, queue_bytes: int = 512 * 1024, burst_bytes: int = 64 * 1024) -> None:
        if burst_bytes > queue_bytes:
            raise ValueError("the burst cannot be larger than the queue")
        self.name = name
        self.queue_bytes = queue_bytes
        self.burst_bytes = burst_bytes
        self.live = True
        self.started = time.time()
        self.content_type = "audio/mpeg"
        self.info: dict[str, str] = {}  # ice-name, ice-description ... as the source sent them
        self.published = 0
        self.slow_drops = 0
        self.listeners_total = 0
        self._chunks: deque[bytes] = deque()
        self._first_seq = 0  # sequence number of _chunks[0]
        self._queued = 0
        self._rest: set[ListenerCursor] = set()  # every listener not in the direct set
        self._direct: dict[ListenerCursor, Callable[[bytes], object]] = {}  # had everything, taking bytes

    @property
    def listeners(self) -> int:
        return len(self._rest) + len(self._direct)

    @property
    def queued_bytes(self) -> int:
        return self._queued

    def publish(self, data: bytes) -> None:
        """Append whole frames, shrink the queue to its bound, and feed every ready listener."""
        if not data or not self.live:
            return
        size = len(data)
        chunks = self._chunks
        chunks.append(data)
        self._queued += size
        self.published += size
        while self._queued > self.queue_bytes and len(chunks) > 1:
            self._queued -= len(chunks.popleft())
            self._first_seq += 1
        for write in tuple(self._direct.values()):  # a copy: a write may pause its socket (stalled)
            write(data)
        first = self._first_seq
        newest = first + len(chunks) - 1
        for cursor in tuple(self._rest):
            seq = cursor.seq
            if seq == newest:  # had everything before: sent here without pump()
                sink = cursor.sink
                if sink.ready():
                    sink.send(data)
                    cursor.seq = seq + 1
                    cursor.sent += size
                    self._join(cursor)
            elif seq < first:
                self.slow_drops += 1
                self._drop(cursor, "slow")
            else:
                self.pump(cursor)

    def attach(self, sink: Sink, direct: Callable[[bytes], object] | None = None) -> ListenerCursor:
        """A new listener, ``burst_bytes`` behind the live edge (Icecast's burst-on-connect).
        ``direct``: the socket's own write, for a sink that calls ``stalled`` (see the module's doc)."""
        seq = self._first_seq + len(self._chunks)
        behind = 0
        for chunk in reversed(self._chunks):
            if behind >= self.burst_bytes:
                break
            behind += len(chunk)
            seq -= 1
        cursor = ListenerCursor(sink, seq, direct=direct)
        self._rest.add(cursor)
        self.listeners_total += 1
        self.pump(cursor)
        return cursor

    def pump(self, cursor: ListenerCursor) -> None:
        """Send a listener what it has not had, for as long as its sink takes bytes."""
        sink = cursor.sink
        chunks = self._chunks
        while not cursor.closed and sink.ready():
            index = cursor.seq - self._first_seq
            if index >= len(chunks):
                self._join(cursor)
                return
            if index < 0:  # the queue moved past it between publishes
                self.slow_drops += 1
                self._drop(cursor, "slow")
                return
            chunk = chunks[index]
            sink.send(chunk)
            cursor.sent += len(chunk)
            cursor.seq += 1

    def stalled(self, cursor: ListenerCursor) -> None:
        """A direct listener's socket stopped taking bytes (or closes): it leaves the direct set, its
        cursor settled (it had every chunk published so far); ``pump`` catches it up later."""
        if self._direct.pop(cursor, None) is None:
            return
        cursor.sent += self.published - cursor.joined_at
        cursor.seq = self._first_seq + len(self._chunks)
        if not cursor.closed:
            self._rest.add(cursor)

    def _join(self, cursor: ListenerCursor) -> None:
        """A listener that had everything and takes bytes: into the direct set, if it can be."""
        if cursor.direct is not None and cursor in self._rest and cursor.sink.ready():
            self._rest.discard(cursor)
            cursor.joined_at = self.published
            self._direct[cursor] = cursor.direct

    def detach(self, cursor: ListenerCursor) -> None:
        self.stalled(cursor)
        cursor.closed = True
        self._rest.discard(cursor)

    def end(self) -> None:
        """The source is gone: every listener's stream ends, and the queue is released."""
        self.live = False
        for cursor in [*self._rest, *self._direct]:
            self._drop(cursor, "end")
        self._chunks.clear()
        self._queued = 0

    def _drop(self, cursor: ListenerCursor, reason: str) -> None:
        self.detach(cursor)
        cursor.sink.close(reason)

    def public(self) -> dict[str, Any]:
        return {
            "mount": self.name,
            "content_type": self.content_type,
            "listeners": self.listeners,
            "listeners_total": self.listeners_total,
            "slow_listeners_dropped": self.slow_drops,
            "bytes_published": self.published,
            "queued_bytes": self._queued,
            "started_at": iso_from_epoch(self.started),
            **{k: v for k, v in self.info.items() if v},
        }
