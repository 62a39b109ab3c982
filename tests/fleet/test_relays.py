"""Relays across two real ``media-mgr serve`` on one database, to a real icecast2.

A relay is a row in PostgreSQL naming the instance that runs it: the API answers the same list on
every instance, a relay of a live mount runs where the mount's source is, a relay whose source is
on another instance reads it through the fleet, and when its instance is SIGKILLed the survivor
that declares it gone takes the relay over and Icecast receives audio again.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fleet_shout import Instance, live_mounts, start_instance, wait_for
from shout_peers import Icecast, ShoutUrl, kill, push

from sounds import raw_mp3

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def two(new_database: Callable[[], str], tmp_path: Path) -> Iterator[tuple[Instance, Instance]]:
    dsn = new_database()
    a = start_instance(dsn, tmp_path / "a", MEDIA_MGR_TIMEOUT_SHOUT_SOURCE="5")
    b = start_instance(dsn, tmp_path / "b", MEDIA_MGR_TIMEOUT_SHOUT_SOURCE="5")
    yield a, b
    for i in (a, b):
        i.server.stop(signal.SIGKILL)


@pytest.fixture
def icecast() -> Iterator[Icecast]:
    ice = Icecast().start()
    yield ice
    ice.close()


def add_relay(via: Instance, ice: Icecast, target_mount: str, mount: str) -> dict[str, Any]:
    target = {"host": "127.0.0.1", "port": ice.port, "mount": target_mount, "password": ice.source_password}
    r = httpx.post(f"{via.server.url}/v1/relays", json={"mount": mount, "target": target}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def relays(instance: Instance) -> list[dict[str, Any]]:
    r = httpx.get(f"{instance.server.url}/v1/relays", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def relay(instance: Instance, relay_id: str) -> dict[str, Any]:
    r = httpx.get(f"{instance.server.url}/v1/relays/{relay_id}", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def static(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What every instance must agree on (live counters move between two requests)."""
    return [(i["id"], i["instance"], i["source"], i["target"]) for i in items]


def streaming(instance: Instance, relay_id: str) -> bool:
    return bool(relay(instance, relay_id)["state"] == "streaming")


def icecast_has(ice: Icecast, mount: str) -> bool:
    """Whether Icecast has a source on ``mount`` (it answers a listener 200, else 404)."""
    with httpx.stream("GET", f"http://127.0.0.1:{ice.port}{mount}", timeout=10) as r:
        return bool(r.status_code == 200)


def source(instance: Instance, mount: str, path: Path) -> subprocess.Popen[bytes]:
    return push(ShoutUrl("source", "hackme", "127.0.0.1", instance.shout_port, mount), path, pace=True)


def test_a_relay_created_through_b_runs_on_a_and_survives_the_kill_of_a(
    two: tuple[Instance, Instance], icecast: Icecast, tmp_path: Path
) -> None:
    a, b = two
    sent = raw_mp3(tmp_path / "live.mp3", seconds=40.0)
    first = source(a, "/studio.mp3", tmp_path / "live.mp3")
    second = None
    try:
        wait_for(lambda: "/studio.mp3" in live_mounts(a), what="source on A")
        created = add_relay(b, icecast, "/relayed.mp3", "/studio.mp3")
        assert created["instance"] == a.id  # it runs where the source is
        assert static(relays(a)) == static(relays(b)) == static([created])
        assert "password" not in str(relays(b))
        wait_for(lambda: streaming(b, created["id"]), what="relay streaming (asked through B)")
        heard = icecast.listen("/relayed.mp3", 2.0)
        assert len(heard) > 1000 and heard in sent

        a.server.stop(signal.SIGKILL)  # no goodbye: B declares A gone after the grace, takes the relay
        kill(first)
        wait_for(lambda: relays(b)[0]["instance"] == b.id, what="relay taken over by B")
        assert "relays taken over from a gone instance" in b.server.log()
        assert static(relays(b)) == [(created["id"], b.id, created["source"], created["target"])]

        second = source(b, "/studio.mp3", tmp_path / "live.mp3")  # mod_shout reconnects: lands on B
        wait_for(lambda: streaming(b, created["id"]), what="relay streaming again, from B")
        again = icecast.listen("/relayed.mp3", 2.0)
        assert len(again) > 1000 and again in sent  # Icecast receives audio again
    finally:
        kill(first)
        if second is not None:
            kill(second)


def test_a_relay_reads_a_mount_of_another_instance_and_is_deleted_through_either(
    two: tuple[Instance, Instance], icecast: Icecast, tmp_path: Path
) -> None:
    a, b = two
    sent = raw_mp3(tmp_path / "live.mp3", seconds=30.0)
    created = add_relay(b, icecast, "/far.mp3", "/elsewhere.mp3")  # no source anywhere: runs on B
    assert created["instance"] == b.id and created["state"] == "waiting"
    pusher = source(a, "/elsewhere.mp3", tmp_path / "live.mp3")
    try:
        wait_for(lambda: streaming(a, created["id"]), what="B's relay streaming A's mount")
        heard = icecast.listen("/far.mp3", 2.0)
        assert len(heard) > 1000 and heard in sent  # A's source, through B's mirror, to Icecast
        assert "mirroring a mount of another instance" in b.server.log()
        r = httpx.delete(f"{a.server.url}/v1/relays/{created['id']}", timeout=30)  # asked of A
        assert r.status_code == 204
        for instance in two:
            assert relays(instance) == []
            assert (
                httpx.get(f"{instance.server.url}/v1/relays/{created['id']}", timeout=10).status_code == 404
            )
        # B stopped it: Icecast's mount goes away (nothing feeds it any more).
        wait_for(lambda: not icecast_has(icecast, "/far.mp3"), what="Icecast mount gone")
    finally:
        kill(pusher)


def test_the_relays_of_a_cleanly_stopped_instance_are_adopted_by_another(
    two: tuple[Instance, Instance], icecast: Icecast
) -> None:
    """Nobody declares a stopped instance gone: its relays stay in the table and the next pass of
    a live instance adopts them (one UPDATE, so one adopter)."""
    a, b = two
    created = add_relay(a, icecast, "/kept.mp3", "/later.mp3")
    assert created["instance"] == a.id
    assert a.server.stop(signal.SIGTERM) == 0
    wait_for(lambda: relays(b)[0]["instance"] == b.id, what="relay adopted by B")
    assert "relays of a stopped instance adopted" in b.server.log()
    assert relay(b, created["id"])["state"] == "waiting"  # running on B, waiting for a source
