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
