"""No credential reaches the log: a server at debug level, with AMQP on, is used with every kind of
credential it knows, then everything it logged is searched for each of them.

Credentials: the admin token (Bearer, and ``?token=`` on the audio_stream WebSocket), a recording's
SHOUT token (python-shout's password), a store URL's Basic user:password (PUT), stream URL tokens
(REST and media_req), an audio_stream URL token, the URL signing secret, the SHOUT source password
(a live mount), the store PUT password, the database and broker URL passwords, and a wrong
password presented to the SHOUT port.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from fault_peers import Requester, amqp_server, wait_ready
from private_services import PrivatePostgres, PrivateRabbit
from shout_peers import ShoutUrl, push, push_and_wait, shout_port
from websockets.asyncio.client import connect

from sounds import raw_mp3, tone

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ADMIN = secrets.token_hex(16)
SIGNING = f"signing-{secrets.token_hex(12)}"
SOURCE_PASSWORD = f"source-{secrets.token_hex(8)}"
PUT_USER = "kazoo"
PUT_PASSWORD = f"put-{secrets.token_hex(8)}"
DB_PASSWORD = f"db-{secrets.token_hex(8)}"
WRONG_PASSWORD = f"wrong-{secrets.token_hex(8)}"


@pytest.fixture
def pg() -> Iterator[PrivatePostgres]:
    with PrivatePostgres() as cluster:
        subprocess.run(
            ["psql", cluster.dsn, "-qc", f"ALTER USER postgres PASSWORD '{DB_PASSWORD}'"], check=True
        )
        yield cluster


def token_of_path(url: str, kind: str) -> str:
    match = re.search(rf"/{kind}/([^/]+)/", url)
    assert match, url
    return match.group(1)


def test_nothing_the_server_logged_contains_a_credential(
    pg: PrivatePostgres, rabbit: PrivateRabbit, tmp_path: Path
) -> None:
    dsn = pg.dsn.replace("postgres@", f"postgres:{DB_PASSWORD}@")
    srv = amqp_server(dsn, rabbit.url, tmp_path / "srv", MEDIA_MGR_LOG_LEVEL="debug",
                      MEDIA_MGR_ADMIN_TOKEN=ADMIN, MEDIA_MGR_SECRET=SIGNING,
                      MEDIA_MGR_SHOUT_SOURCE_PASSWORD=SOURCE_PASSWORD, MEDIA_MGR_STORE_PUT_USERNAME=PUT_USER,
                      MEDIA_MGR_STORE_PUT_PASSWORD=PUT_PASSWORD)  # fmt: skip
    used: dict[str, str] = {"admin token": ADMIN, "signing secret": SIGNING, "source password": SOURCE_PASSWORD,
                            "store put password": PUT_PASSWORD, "database password": DB_PASSWORD,
                            "wrong shout password": WRONG_PASSWORD,
                            "put basic header": base64.b64encode(f"{PUT_USER}:{PUT_PASSWORD}".encode()).decode(),
                            "broker userinfo": "guest:guest@"}  # fmt: skip
    try:
        wait_ready(srv)
        bearer = {"authorization": f"Bearer {ADMIN}"}
        with httpx.Client(base_url=srv.url, headers=bearer, timeout=30) as admin:
            assert httpx.get(f"{srv.url}/v1/media", timeout=10).status_code == 401  # no token: refused
            item = upload_as(admin, tone(tmp_path / "t.wav", seconds=1))
            url = stream_url_as(admin, item["media_name"])
            used["stream token"] = token_of_path(url, "single")
            assert httpx.get(url, timeout=10).status_code == 200

            rec = admin.post("/v1/recordings", json={}).json()
            shout = ShoutUrl.parse(rec["shout_url"])
            used["recording shout token"] = shout.password
            used["store token"] = token_of_path(rec["store_url"], "store")
            push_and_wait(
                shout, write(tmp_path / "r.mp3", raw_mp3(tmp_path / "r.mp3", seconds=1.0)), pace=False
            )
            assert wait_complete(admin, rec["id"]) == "complete"

            put = admin.post("/v1/recordings", json={}).json()
            used["second store token"] = token_of_path(put["store_url"], "store")
            assert unquote(urlsplit(put["store_url"]).password or "") == PUT_PASSWORD
            r = httpx.put(put["store_url"], content=raw_mp3(tmp_path / "p.mp3", seconds=1.0), timeout=30)
            assert r.status_code in (200, 201, 204), r.text

            ws = admin.post("/v1/audio-stream-urls", json={}).json()["url"]
            used["audio_stream token"] = parse_qs(urlsplit(ws).query)["token"][0]

        port = shout_port(srv)
        live = ShoutUrl("source", SOURCE_PASSWORD, "127.0.0.1", port, "/live-check.mp3")
        push_and_wait(live, tmp_path / "r.mp3", pace=False)
        wrong = push(
            ShoutUrl("source", WRONG_PASSWORD, "127.0.0.1", port, "/live-check.mp3"), tmp_path / "r.mp3"
        )
        assert wrong.wait(30) == 1  # refused

        async def websockets_and_media_req() -> None:
            base = f"ws://127.0.0.1:{srv.port}/audio_stream"
            for target in (f"{base}?token={ADMIN}&rate=8000", ws):
                async with connect(target, open_timeout=5):
                    pass
            async with Requester(rabbit.url) as ecallmgr:
                request = await ecallmgr.send(item["media_name"])
                reply = await ecallmgr.reply_to(request, timeout=5)
            assert reply is not None and reply["Event-Name"] == "media_resp"
            used["media_req stream token"] = token_of_path(str(reply["Stream-URL"]), "single")

        asyncio.run(websockets_and_media_req())
    finally:
        srv.stop()
    logged = srv.log()
    assert '"level": "debug"' in logged  # the run really logged at debug level
    leaks = {name: value for name, value in used.items() if value in logged}
    assert leaks == {}, "\n".join(
        line for line in logged.splitlines() if any(v in line for v in leaks.values())
    )


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def upload_as(admin: httpx.Client, path: Path) -> dict[str, str]:
    with path.open("rb") as f:
        r = admin.post("/v1/media", files={"file": (path.name, f)})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def stream_url_as(admin: httpx.Client, media_name: str) -> str:
    r = admin.post("/v1/stream-urls", json={"media_name": media_name})
    assert r.status_code == 200, r.text
    return str(r.json()["stream_url"])


def wait_complete(admin: httpx.Client, recording_id: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        state = str(admin.get(f"/v1/recordings/{recording_id}").json()["state"])
        if state != "recording" or time.monotonic() > deadline:
            return state
        time.sleep(0.1)
