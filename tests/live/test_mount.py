"""The live mount on its own (no sockets): one bounded queue, listeners as cursors, burst on connect,
slow listeners dropped and counted, the source never held back."""

from __future__ import annotations

import pytest

from media_mgr.errors import InvalidRequest
from media_mgr.live.cursor import ListenerCursor
from media_mgr.live.mount import Mount
from media_mgr.live.registry import MountInUse, MountRegistry, check_mount


class FakeSink:
    """A listener whose socket takes ``room`` bytes before it 'pauses writing'."""

    def __init__(self, room: int = 1 << 30) -> None:
        self.room = room
        self.got = bytearray()
        self.closed: str | None = None

    def ready(self) -> bool:
        return self.closed is None and len(self.got) < self.room

    def send(self, data: bytes | memoryview) -> None:
        assert self.ready()
        self.got += data

    def close(self, reason: str) -> None:
        self.closed = reason


def chunks(n: int, size: int = 1000) -> list[bytes]:
    return [bytes([i % 256]) * size for i in range(n)]


def test_a_listener_gets_a_burst_from_a_chunk_start_then_follows_live() -> None:
    mount = Mount("/m.mp3", queue_bytes=10_000, burst_bytes=2_500)
    data = chunks(8)
    for c in data:
        mount.publish(c)
    sink = FakeSink()
    mount.attach(sink)
    assert bytes(sink.got) == b"".join(data[-3:])  # 3000 >= 2500 behind the edge, whole chunks only
    mount.publish(b"live")
    assert bytes(sink.got).endswith(b"live")


def test_the_queue_stays_within_its_bound() -> None:
    mount = Mount("/m.mp3", queue_bytes=5_000, burst_bytes=1_000)
    for c in chunks(100):
        mount.publish(c)
        assert mount.queued_bytes <= 5_000
    assert mount.published == 100_000


def test_a_slow_listener_is_dropped_never_the_source() -> None:
    mount = Mount("/m.mp3", queue_bytes=5_000, burst_bytes=0)
    fast, slow = FakeSink(), FakeSink(room=2_000)  # slow stops reading after 2 kB
    mount.attach(fast)
    mount.attach(slow)
    for c in chunks(20):
        mount.publish(c)  # never blocks, whatever the listeners do
    assert slow.closed == "slow" and mount.slow_drops == 1
    assert len(fast.got) == 20_000 and fast.closed is None
    assert mount.listeners == 1


def test_a_paused_listener_catches_up_from_its_cursor_when_it_resumes() -> None:
    mount = Mount("/m.mp3", queue_bytes=50_000, burst_bytes=0)
    sink = FakeSink(room=1_000)
    cursor = mount.attach(sink)
    data = chunks(5)
    for c in data:
        mount.publish(c)
    assert bytes(sink.got) == data[0]
    sink.room = 1 << 30  # the socket drained: resume_writing -> pump
    mount.pump(cursor)
    assert bytes(sink.got) == b"".join(data)


def test_when_the_source_ends_every_listener_stream_ends() -> None:
    registry = MountRegistry(queue_bytes=10_000, burst_bytes=1_000)
    mount = registry.claim("/end.mp3")
    sinks = [FakeSink() for _ in range(3)]
    for s in sinks:
        mount.attach(s)
    registry.release(mount)
    assert [s.closed for s in sinks] == ["end"] * 3
    assert registry.get("/end.mp3") is None and mount.queued_bytes == 0


def test_one_source_per_mount() -> None:
    registry = MountRegistry(queue_bytes=10_000, burst_bytes=1_000)
    first = registry.claim("/one.mp3")
    with pytest.raises(MountInUse):
        registry.claim("/one.mp3")
    registry.release(first)
    registry.claim("/one.mp3")


@pytest.mark.parametrize("bad", ["", "x.mp3", "/a/../b", "//x", "/a b", "/" + "x" * 300])
def test_mount_names_are_paths(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        check_mount(bad)


class SocketSink(FakeSink):
    """A socket listener as ``shout/protocol.py`` is one: the mount writes to it directly while it
    had everything and takes bytes; it says ``stalled`` when its buffer fills ("pause_writing")."""

    def __init__(self, mount: Mount, room: int = 1 << 30) -> None:
        super().__init__(room)
        self.mount = mount
        self.direct_writes = 0
        self.cursor: ListenerCursor | None = None  # a pause during the burst tells nobody, as there
        self.cursor = mount.attach(self, direct=self.write)

    def write(self, data: bytes) -> None:
        assert self.closed is None and len(self.got) < self.room  # never written once it stalled
        self.direct_writes += 1
        self.got += data
        self._maybe_stalled()

    def send(self, data: bytes | memoryview) -> None:
        super().send(data)
        self._maybe_stalled()

    def _maybe_stalled(self) -> None:
        if len(self.got) >= self.room and self.cursor is not None:
            self.mount.stalled(self.cursor)

    def drain(self, room: int = 1 << 30) -> None:
        self.room = room
        assert self.cursor is not None
        self.mount.pump(self.cursor)


def test_a_socket_listener_gets_every_chunk_as_a_sink_asked_per_chunk_does() -> None:
    """Through the direct set (burst, live, a pause, catching up, live again): the same bytes, in
    order, as a listener the mount asks ``ready()`` for every chunk; the cursor settled on leaving."""
    mount = Mount("/m.mp3", queue_bytes=50_000, burst_bytes=2_500)
    data = chunks(40)
    for c in data[:5]:
        mount.publish(c)
    asked, sock = FakeSink(), SocketSink(mount, room=3_000 + 4_000)  # burst 3000, then 4 more
    mount.attach(asked)
    for c in data[5:15]:
        mount.publish(c)
    assert len(sock.got) == 7_000 and sock.direct_writes == 4  # stalled at its room
    assert sock.cursor is not None
    assert sock.cursor.seq == 9 and sock.cursor.sent == 7_000  # settled when it left
    sock.drain()  # resume_writing: the six chunks it missed, then direct again
    for c in data[15:]:
        mount.publish(c)
    assert bytes(sock.got) == bytes(asked.got) == b"".join(data[2:])
    assert sock.direct_writes == 4 + 25
    mount.detach(sock.cursor)
    assert sock.cursor.seq == 40 and sock.cursor.sent == len(sock.got)
    mount.publish(b"after")  # gone: nothing more written to it
    assert not bytes(sock.got).endswith(b"after") and mount.listeners == 1


def test_a_stalled_socket_listener_that_falls_out_of_the_queue_is_dropped() -> None:
    mount = Mount("/m.mp3", queue_bytes=5_000, burst_bytes=0)
    fast, slow = SocketSink(mount), SocketSink(mount, room=2_000)
    for c in chunks(20):
        mount.publish(c)
    assert slow.closed == "slow" and mount.slow_drops == 1
    assert len(fast.got) == 20_000 and fast.direct_writes == 20 and fast.closed is None
    assert mount.listeners == 1


def test_a_socket_listener_that_stalls_during_its_burst_is_not_written_directly() -> None:
    mount = Mount("/m.mp3", queue_bytes=50_000, burst_bytes=5_000)
    for c in chunks(10):
        mount.publish(c)
    sock = SocketSink(mount, room=2_000)  # its burst fills its room: it never joined
    mount.publish(b"x" * 1000)
    assert len(sock.got) == 2_000 and sock.direct_writes == 0
    sock.drain()
    assert len(sock.got) == 6_000 and bytes(sock.got).endswith(b"x" * 1000)
    mount.publish(b"y" * 1000)
    assert sock.direct_writes == 1 and bytes(sock.got).endswith(b"y" * 1000)
