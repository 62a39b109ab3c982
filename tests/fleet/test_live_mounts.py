"""Live mounts across two real ``media-mgr serve`` on one database.

A python-shout source (mod_shout's settings) streams to instance A; listeners send mod_shout's
exact GET to A and to B. B's listener gets the same MP3 frames as A's (byte for byte, hence the
same samples), through one upstream from A however many listen on B, and its stream ends when the
source stops.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fleet_shout import Instance, Listener, live_mounts, mod_shout_get, start_instance, wait_for
from shout_peers import ShoutUrl, kill, push

from sounds import decode, raw_mp3

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def two(new_database: Callable[[], str], tmp_path: Path) -> Iterator[tuple[Instance, Instance]]:
    dsn = new_database()
    a = start_instance(dsn, tmp_path / "a")
    b = start_instance(dsn, tmp_path / "b")
    yield a, b
    for i in (a, b):
        i.server.stop(signal.SIGKILL)


def source(instance: Instance, mount: str, path: Path, delay: float = 0.0) -> subprocess.Popen[bytes]:
    url = ShoutUrl("source", "hackme", "127.0.0.1", instance.shout_port, mount)
    return push(url, path, pace=True, extra=["--delay", str(delay)] if delay else None)


def test_a_listener_on_another_instance_hears_the_same_frames_and_ends_with_the_source(
    two: tuple[Instance, Instance], tmp_path: Path
) -> None:
    a, b = two
    sent = raw_mp3(tmp_path / "live.mp3", seconds=6.0)  # 16 kbit/s: all of it fits the burst
    pusher = source(a, "/fleet.mp3", tmp_path / "live.mp3", delay=1.0)
    try:
        wait_for(lambda: "/fleet.mp3" in live_mounts(a), what="source on A")
        on_a = Listener(a.shout_port, "/fleet.mp3").start()
        on_b = [Listener(b.shout_port, "/fleet.mp3").start() for _ in range(2)]
        # Two listeners on B cost A one listener: B's mirror (A's own listener is the other).
        wait_for(lambda: live_mounts(a).get("/fleet.mp3") == 2, what="A counts its listener and B's mirror")
        assert pusher.wait(60) == 0
        for listener in (on_a, *on_b):
            listener.join()
    finally:
        kill(pusher)
    assert on_a.status == 200 and all(lb.status == 200 for lb in on_b)
    assert all(lb.closed_by_server for lb in (on_a, *on_b))  # the source ended: so did every stream
    assert len(on_a.body) > len(sent) // 2 and on_a.body in sent
    for listener in on_b:
        assert listener.body == on_a.body  # the same frames, byte for byte, from the same point
        assert np.array_equal(decode(listener.body), decode(on_a.body))
    assert "mirroring a mount of another instance" in b.server.log()
    assert b.server.log().count("mirroring a mount of another instance") == 1  # one upstream for two


def test_a_listener_on_another_instance_ends_when_the_source_is_cut_off(
    two: tuple[Instance, Instance], tmp_path: Path
) -> None:
    a, b = two
    sent = raw_mp3(tmp_path / "long.mp3", seconds=60.0)
    pusher = source(a, "/cut.mp3", tmp_path / "long.mp3")
    try:
        wait_for(lambda: "/cut.mp3" in live_mounts(a), what="source on A")
        on_b = Listener(b.shout_port, "/cut.mp3").start()
        wait_for(lambda: len(on_b.data) > 4000, what="audio on B")
    finally:
        kill(pusher)  # SIGKILL: the source's connection is reset, as when FreeSWITCH dies
    on_b.join()
    assert on_b.closed_by_server
    assert len(on_b.body) > 2000 and on_b.body in sent
    wait_for(lambda: "/cut.mp3" not in live_mounts(a), what="mount released on A")


def test_a_mount_nobody_holds_is_404_on_every_instance(two: tuple[Instance, Instance]) -> None:
    for instance in two:
        listener = Listener(instance.shout_port, "/nobody.mp3").start().join()
        assert listener.status == 404


def test_the_mirror_lets_go_of_the_owner_when_its_last_listener_leaves(
    two: tuple[Instance, Instance], tmp_path: Path
) -> None:
    a, b = two
    raw_mp3(tmp_path / "long.mp3", seconds=60.0)
    pusher = source(a, "/leave.mp3", tmp_path / "long.mp3")
    try:
        wait_for(lambda: "/leave.mp3" in live_mounts(a), what="source on A")
        with socket.create_connection(("127.0.0.1", b.shout_port), timeout=30) as sock:
            sock.sendall(mod_shout_get(b.shout_port, "/leave.mp3"))
            assert sock.recv(65536).startswith(b"HTTP/1.0 200 OK")
            wait_for(lambda: live_mounts(a)["/leave.mp3"] == 1, what="B's mirror listening on A")
        # B's only listener left: B's mirror closes its stream from A, A's mount has no listener.
        wait_for(lambda: live_mounts(a)["/leave.mp3"] == 0, what="A's listener (the mirror) gone")
        assert "mirror has no listener left" in b.server.log()
        again = Listener(b.shout_port, "/leave.mp3").start()  # a new listener opens a new mirror
        wait_for(lambda: len(again.data) > 4000, what="audio on B again")
    finally:
        kill(pusher)
    again.join()
    assert again.closed_by_server


def test_a_second_source_on_another_instance_is_refused_like_icecast_refuses_one(
    two: tuple[Instance, Instance], tmp_path: Path
) -> None:
    """One source per mount across the fleet: libshout's open fails on B while A has the mount,
    and succeeds once A's source has gone."""
    a, b = two
    raw_mp3(tmp_path / "one.mp3", seconds=30.0)
    raw_mp3(tmp_path / "short.mp3", seconds=1.0)
    first = source(a, "/only.mp3", tmp_path / "one.mp3")
    try:
        wait_for(lambda: "/only.mp3" in live_mounts(a), what="source on A")
        second = source(b, "/only.mp3", tmp_path / "short.mp3")
        out, _ = second.communicate(timeout=30)
        assert second.returncode != 0 and b"open failed" in out, out
        assert "/only.mp3" not in live_mounts(b)
    finally:
        kill(first)
    wait_for(lambda: "/only.mp3" not in live_mounts(a), what="A's source gone")
    third = source(b, "/only.mp3", tmp_path / "short.mp3")
    out, _ = third.communicate(timeout=30)
    assert third.returncode == 0, out


# libshout 2.4.6's source request (reference 3.5), mount and port filled in: source/hackme.
LIBSHOUT_PUT = ("PUT {mount} HTTP/1.1\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\nHost: 127.0.0.1:{port}\r\n"
                "User-Agent: libshout/2.4.6\r\nContent-Type: audio/mpeg\r\nExpect: 100-continue\r\n"
                "ice-public: 0\r\nice-name: no name\r\nPrefer: return=minimal\r\n\r\n")  # fmt: skip


def race_for(mount: str, a: Instance, b: Instance) -> dict[str, bytes]:
    """libshout's PUT for ``mount`` sent to A and to B at one instant; each one's first reply."""
    start = threading.Barrier(2)
    replies: dict[str, bytes] = {}
    socks: list[socket.socket] = []

    def open_source(instance: Instance, key: str) -> None:
        sock = socket.create_connection(("127.0.0.1", instance.shout_port), timeout=30)
        socks.append(sock)
        head = LIBSHOUT_PUT.format(mount=mount, port=instance.shout_port).encode()
        start.wait()
        sock.sendall(head)
        replies[key] = sock.recv(200)

    threads = [threading.Thread(target=open_source, args=(i, k)) for i, k in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for sock in socks:  # both sources leave: the mount is free again
        sock.close()
    return replies


def test_two_sources_arriving_together_on_two_instances_get_one_mount_between_them(
    two: tuple[Instance, Instance],
) -> None:
    """libshout's PUT for one mount sent to A and to B in the same instant, round after round:
    exactly one is let in (100 Continue), the other gets Icecast's 403."""
    a, b = two
    for n in range(8):
        mount = f"/race-{n}.mp3"
        replies = race_for(mount, a, b)
        lines = sorted(replies[k].split(b"\r\n", 1)[0] for k in ("a", "b"))
        assert lines == [b"HTTP/1.1 100 Continue", b"HTTP/1.1 403 Forbidden"], (n, replies)
        for i in (a, b):
            wait_for(lambda: mount not in live_mounts(i), what=f"{mount} released")  # noqa: B023
