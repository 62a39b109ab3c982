"""Relays to a real icecast2 on 127.0.0.1 through python-shout: a live mount and a stored item played
in a loop are heard by a listener on the Icecast side; when Icecast goes away the relay backs off
and comes back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from shout_peers import Icecast, ShoutUrl, push, start_shout_server

from servers import RunningServer
from sounds import decode, raw_mp3


@pytest.fixture(scope="module")
def shout(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, int]]:
    srv, port = start_shout_server(database_url, tmp_path_factory.mktemp("shout-relay"),
                                   MEDIA_MGR_TIMEOUT_SHOUT_SOURCE="5")  # fmt: skip
    yield srv, port
    srv.stop()


@pytest.fixture
def icecast() -> Iterator[Icecast]:
    ice = Icecast().start()
    yield ice
    ice.close()


def add_relay(srv: RunningServer, ice: Icecast, target_mount: str, **source: str) -> dict[str, Any]:
    target = {"host": "127.0.0.1", "port": ice.port, "mount": target_mount, "password": ice.source_password}
    r = httpx.post(f"{srv.url}/v1/relays", json={**source, "target": target}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def relay_state(srv: RunningServer, relay_id: str) -> dict[str, Any]:
    r = httpx.get(f"{srv.url}/v1/relays/{relay_id}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def wait_relay(srv: RunningServer, relay_id: str, *, connects: int, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = relay_state(srv, relay_id)
        if (got["state"] == "streaming" and got["connects"] >= connects) or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_a_live_mount_relayed_to_icecast_is_heard_there(shout: tuple[RunningServer, int], icecast: Icecast,
                                                        tmp_path: Path) -> None:  # fmt: skip
    srv, port = shout
    sent = raw_mp3(tmp_path / "live.mp3", seconds=8.0)
    relay = add_relay(srv, icecast, "/relayed.mp3", mount="/studio.mp3")
    assert relay["state"] == "waiting"  # no source yet: nothing is sent to Icecast
    source = push(ShoutUrl("source", "hackme", "127.0.0.1", port, "/studio.mp3"), tmp_path / "live.mp3")
    try:
        assert wait_relay(srv, relay["id"], connects=1)["state"] == "streaming"
        heard = icecast.listen("/relayed.mp3", 3.0)
    finally:
        source.kill()
    assert len(heard) > 2000 and heard in sent  # Icecast's listener got our frames, untouched
    r = httpx.delete(f"{srv.url}/v1/relays/{relay['id']}", timeout=30)
    assert r.status_code == 204
    assert httpx.get(f"{srv.url}/v1/relays/{relay['id']}").status_code == 404


def test_a_stored_item_loops_to_icecast_and_the_relay_comes_back_after_icecast_restarts(
    shout: tuple[RunningServer, int], icecast: Icecast, tmp_path: Path
) -> None:
    srv, _ = shout
    moh = raw_mp3(tmp_path / "moh.mp3", seconds=2.0)
    up = httpx.post(f"{srv.url}/v1/media", content=moh, headers={"content-type": "audio/mpeg"}, timeout=30)
    assert up.status_code == 201, up.text
    relay = add_relay(srv, icecast, "/moh.mp3", media_id=up.json()["id"])
    try:
        assert wait_relay(srv, relay["id"], connects=1)["state"] == "streaming"
        heard = icecast.listen("/moh.mp3", 4.0)
        assert len(heard) > len(moh)  # more than the item itself: it loops (burst plus real time)
        assert len(decode(heard)) > 2 * 8000
        icecast.stop()  # Icecast goes away...
        deadline = time.monotonic() + 15
        while relay_state(srv, relay["id"])["state"] == "streaming" and time.monotonic() < deadline:
            time.sleep(0.2)  # libshout notices at its next send
        assert relay_state(srv, relay["id"])["state"] in ("backoff", "connecting")
        icecast.start()  # ...and comes back on the same port
        back = wait_relay(srv, relay["id"], connects=2)
        assert back["state"] == "streaming" and back["connects"] >= 2 and back["last_error"]
        assert len(icecast.listen("/moh.mp3", 2.0)) > 1000
    finally:
        httpx.delete(f"{srv.url}/v1/relays/{relay['id']}", timeout=30)


def test_relay_requests_are_checked(shout: tuple[RunningServer, int]) -> None:
    srv, _ = shout
    target = {"host": "127.0.0.1", "port": 1, "mount": "/x.mp3", "password": "p"}
    both = httpx.post(
        f"{srv.url}/v1/relays", json={"mount": "/a.mp3", "media_id": "b" * 32, "target": target}
    )
    assert both.status_code == 400
    missing = httpx.post(f"{srv.url}/v1/relays", json={"media_id": "b" * 32, "target": target})
    assert missing.status_code == 404
