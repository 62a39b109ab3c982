"""Who may use /v1: the admin token when set, loopback clients only when not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from media_mgr.app import Service
from media_mgr.config import Settings
from media_mgr.credentials import is_loopback

from servers import RunningServer, start_server


@pytest.fixture(scope="module")
def token_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("token")
    srv = start_server({"MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(data),
                        "MEDIA_MGR_ADMIN_TOKEN": "s3cret-token"}, data / "log")  # fmt: skip
    yield srv
    srv.stop()


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic czNjcmV0LXRva2Vu", "Bearer"])
def test_admin_api_needs_the_token(token_server: RunningServer, auth: str | None) -> None:
    headers = {"authorization": auth} if auth else {}
    r = httpx.get(f"{token_server.url}/v1/media", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"


def test_the_token_opens_the_admin_api_and_probes_stay_open(token_server: RunningServer) -> None:
    r = httpx.get(f"{token_server.url}/v1/media", headers={"authorization": "Bearer s3cret-token"})
    assert r.status_code == 200
    for path in ("/healthz", "/readyz", "/metrics"):
        assert httpx.get(f"{token_server.url}{path}").status_code == 200


async def test_without_a_token_only_loopback_clients_are_admins(database_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path, http_port=0, shout_port=0)
    async with Service(settings).open() as app:
        remote = httpx.ASGITransport(app, client=("192.0.2.10", 40000))
        async with httpx.AsyncClient(transport=remote, base_url="http://media-mgr") as client:
            r = await client.get("/v1/media")
            assert r.status_code == 403
            assert "MEDIA_MGR_ADMIN_TOKEN" in r.json()["detail"]
            assert (await client.get("/healthz")).status_code == 200
        local = httpx.ASGITransport(app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=local, base_url="http://media-mgr") as client:
            assert (await client.get("/v1/media")).status_code == 200


@pytest.mark.parametrize(("host", "expected"), [("127.0.0.1", True), ("127.9.9.9", True), ("::1", True),
                                                ("10.0.0.1", False), ("192.0.2.1", False), (None, False),
                                                ("testclient", False)])  # fmt: skip
def test_is_loopback(host: str | None, expected: bool) -> None:
    assert is_loopback(host) is expected
