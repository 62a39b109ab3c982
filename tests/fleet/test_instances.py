"""The instance registry with real ``media-mgr serve`` processes on one database.

Each instance registers, lists the others, is reachable on its own internal port, and is declared
gone by exactly one survivor when killed (SIGKILL: no chance to say goodbye), or marks itself
stopped on SIGTERM.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fleet_shout import wait_for

from media_mgr.fleet.instance import fleet_token

from servers import RunningServer, start_server

GRACE = "1"


def instances(server: RunningServer, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v1/instances", timeout=10, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def fleet(new_database: Callable[[], str], tmp_path: Path) -> Iterator[list[RunningServer]]:
    dsn = new_database()
    env = {"MEDIA_MGR_DATABASE_URL": dsn, "MEDIA_MGR_FLEET_GRACE_SECONDS": GRACE}
    servers = [start_server(env, tmp_path / f"server{i}.log") for i in range(3)]
    yield servers
    for s in servers:
        s.stop(signal.SIGKILL)


def test_every_instance_lists_every_other_and_itself(fleet: list[RunningServer]) -> None:
    listings = [instances(s) for s in fleet]
    ids = {body["self"] for body in listings}
    assert len(ids) == 3
    for body in listings:
        live = {i["id"] for i in body["instances"] if i["state"] == "live"}
        assert live == ids
        mine = [i for i in body["instances"] if i["self"]]
        assert [i["id"] for i in mine] == [body["self"]]
        assert {i["pid"] for i in body["instances"]} == {s.proc.pid for s in fleet}


def test_the_internal_port_reaches_exactly_that_instance(fleet: list[RunningServer]) -> None:
    for i in instances(fleet[0])["instances"]:
        # The internal URL answers as the instance it names, whichever instance listed it.
        assert instances_at(i["internal_url"])["self"] == i["id"]


def instances_at(base_url: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/v1/instances", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_killed_instance_is_declared_gone_once_by_one_survivor(fleet: list[RunningServer]) -> None:
    victim, *survivors = fleet
    victim_id = instances(victim)["self"]
    survivor_ids = {instances(s)["self"] for s in survivors}
    victim.stop(signal.SIGKILL)

    def gone() -> dict[str, Any] | None:
        rows = [i for i in instances(survivors[0])["instances"] if i["id"] == victim_id]
        return rows[0] if rows and rows[0]["state"] == "gone" else None

    row = wait_for(gone, what="the victim declared gone")
    assert row["ended_by"] in survivor_ids
    declared = [s for s in survivors if "instance declared gone" in s.log()]
    assert len(declared) == 1  # the one that won the UPDATE, and only it, says so
    assert victim_id in declared[0].log()


def test_a_stopped_instance_says_so_itself(fleet: list[RunningServer]) -> None:
    leaving, staying, _ = fleet
    leaving_id = instances(leaving)["self"]
    assert leaving.stop(signal.SIGTERM) == 0
    rows = [i for i in instances(staying)["instances"] if i["id"] == leaving_id]
    assert rows[0]["state"] == "stopped"
    assert rows[0]["ended_by"] is None
    time.sleep(float(GRACE) * 3)  # a stopped instance is never declared gone afterwards
    assert not any("instance declared gone" in s.log() for s in fleet)


def test_the_fleet_token_is_admin_between_instances_and_nothing_else(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    """With an admin token configured, another instance shows the fleet token (derived from the
    shared secret) instead; a forged one is refused like a wrong bearer token."""
    secret = "fleet-test-secret"
    env = {"MEDIA_MGR_DATABASE_URL": new_database(), "MEDIA_MGR_ADMIN_TOKEN": "admin-token-1",
           "MEDIA_MGR_SECRET": secret}  # fmt: skip
    server = start_server(env, tmp_path / "guarded.log")
    try:
        url = f"{server.url}/v1/instances"
        assert httpx.get(url, timeout=10).status_code == 401
        assert httpx.get(url, headers={"x-media-mgr-fleet": "0" * 64}, timeout=10).status_code == 401
        assert httpx.get(url, headers={"x-media-mgr-fleet": fleet_token(secret.encode())},
                         timeout=10).status_code == 200  # fmt: skip
        assert fleet_token(secret.encode()) not in server.log()
    finally:
        server.stop()
