"""The Health page's instances: two real ``media-mgr serve`` on one database, each page marking the
instance that answered it; one killed, and the survivor's page shows it declared gone by itself."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from browser_visit import Visit
from playwright.sync_api import expect

from servers import RunningServer, start_server

pytestmark = pytest.mark.slow  # a real browser against real servers: seconds per test


@pytest.fixture
def two_instances(new_database: Callable[[], str], tmp_path: Path) -> Iterator[list[RunningServer]]:
    """Function scope: the test kills one of them. A 1 s grace so the survivor declares it gone soon."""
    env = {"MEDIA_MGR_DATABASE_URL": new_database(), "MEDIA_MGR_FLEET_GRACE_SECONDS": "1"}
    servers = []
    for i in range(2):
        data = tmp_path / f"data{i}"
        data.mkdir()
        servers.append(start_server({**env, "MEDIA_MGR_DATA_DIR": str(data)}, data / "server.log"))
    yield servers
    for server in servers:
        server.stop(signal.SIGKILL)


def own_id(server: RunningServer) -> str:
    body = httpx.get(f"{server.url}/v1/instances", timeout=10).json()
    assert isinstance(body["self"], str)
    return body["self"]


def test_health_lists_both_instances_marks_the_one_serving_and_shows_a_killed_one_gone(
    two_instances: list[RunningServer], visit: Visit
) -> None:
    first, second = two_instances
    ids = [own_id(first), own_id(second)]
    page = visit.page
    table = page.locator("#instances-table")

    for server, me, other in ((second, ids[1], ids[0]), (first, ids[0], ids[1])):
        page.goto(server.url + "/console/#health")
        mine = table.locator(f"tbody tr[data-id='{me}']")
        expect(mine).to_have_attribute("data-self", "true")
        expect(mine).to_have_attribute("data-state", "live")
        expect(mine).to_contain_text("this page")
        expect(mine).to_contain_text(str(server.proc.pid))
        theirs = table.locator(f"tbody tr[data-id='{other}']")
        expect(theirs).to_have_attribute("data-self", "false")
        expect(theirs).to_have_attribute("data-state", "live")
        expect(theirs).not_to_contain_text("this page")
        expect(table.locator("caption")).to_contain_text(
            f"Instances: 2 live · this page answered by {me[:8]}"
        )
        card = page.locator("#health-cards .card", has_text="Instances")
        expect(card).to_contain_text("2 live")
        expect(card).to_contain_text(f"this page: {me[:8]} (pid {server.proc.pid}")
    visit.shot("health-instances")

    second.stop(signal.SIGKILL)  # no goodbye: the survivor must notice, and the page shows it (polled)
    gone = table.locator(f"tbody tr[data-id='{ids[1]}']")
    expect(gone).to_have_attribute("data-state", "gone", timeout=30_000)
    expect(gone.locator(".badge")).to_have_text("gone")
    expect(gone).to_contain_text(f"declared gone by {ids[0][:8]}")
    expect(table.locator("caption")).to_contain_text("Instances: 1 live, 1 ended in the last hour")
    expect(page.locator("#health-cards .card", has_text="Instances")).to_contain_text("1 live")
    expect(table.locator("tbody tr").first).to_have_attribute("data-id", ids[0])  # live ones first
    visit.shot("health-instance-gone")


def test_a_stopped_instance_is_shown_stopped_not_gone(
    two_instances: list[RunningServer], visit: Visit
) -> None:
    first, second = two_instances
    leaving = own_id(second)
    page = visit.page
    page.goto(first.url + "/console/#health")
    row = page.locator(f"#instances-table tbody tr[data-id='{leaving}']")
    expect(row).to_have_attribute("data-state", "live")
    assert second.stop(signal.SIGTERM) == 0
    expect(row).to_have_attribute("data-state", "stopped")
    expect(row.locator(".badge")).to_have_text("stopped")
    expect(row).not_to_contain_text("declared gone")
