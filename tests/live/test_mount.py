"""The live mount on its own (no sockets): one bounded queue, listeners as cursors, burst on connect,
slow listeners dropped and counted, the source never held back."""

from __future__ import annotations

import pytest

from media_mgr.errors import InvalidRequest
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
