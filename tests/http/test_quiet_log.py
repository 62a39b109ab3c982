"""A client's own failure is one info line in the server's log, never an ERROR or a traceback
(issue 11, item 9): a refused WebSocket upgrade, an upload the client abandons."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from servers import RunningServer, start_server

ADMIN_TOKEN = secrets.token_hex(16)


@pytest.fixture(scope="module")
def guarded(
    new_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server with an admin token, so a loopback WebSocket without credentials is refused."""
    data = tmp_path_factory.mktemp("quiet")
    srv = start_server(
        {"MEDIA_MGR_DATABASE_URL": new_database(), "MEDIA_MGR_DATA_DIR": str(data),
         "MEDIA_MGR_ADMIN_TOKEN": ADMIN_TOKEN},
        data / "server.log",
    )  # fmt: skip
    yield srv
    srv.stop()


def records(srv: RunningServer) -> list[dict[str, Any]]:
    out = []
    for line in srv.log().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"level": "raw", "msg": line})
    return out


def lines_of(srv: RunningServer, request_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every log line of one request, once its access line is written."""
    deadline = time.monotonic() + timeout
    while True:
        mine = [r for r in records(srv) if r.get("request_id") == request_id]
        if any(r.get("msg") == "request" for r in mine) or time.monotonic() > deadline:
            return mine
        time.sleep(0.05)


def refused_upgrade(srv: RunningServer, path: str, request_id: str) -> int:
    async def connect() -> int:
        try:
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}{path}",
                                          additional_headers={"X-Request-ID": request_id}, open_timeout=10):  # fmt: skip
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    return asyncio.run(connect())


def assert_no_errors(srv: RunningServer) -> None:
    loud = [r for r in records(srv) if r.get("level") not in ("info", "debug") or "exc" in r]
    assert loud == []


@pytest.mark.parametrize(
    ("path", "status"),
    [("/audio_stream", 401), (f"/audio_stream?token={'x' * 43}", 403), ("/no-such-socket", 403)],
)
def test_a_refused_websocket_upgrade_is_one_info_line(guarded: RunningServer, path: str, status: int) -> None:
    rid = f"ws-{secrets.token_hex(4)}"
    assert refused_upgrade(guarded, path, rid) == status
    mine = lines_of(guarded, rid)
    assert [(r["level"], r["msg"], r.get("status")) for r in mine] == [("info", "request", status)]
    assert mine[0]["method"] == "WS"
    assert_no_errors(guarded)


def test_an_abandoned_upload_is_one_info_line(guarded: RunningServer) -> None:
    rid = f"up-{secrets.token_hex(4)}"
    head = (f"POST /v1/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
            f"X-Request-ID: {rid}\r\nContent-Type: audio/wav\r\nContent-Length: 1000000\r\n\r\n")  # fmt: skip
    with socket.create_connection(("127.0.0.1", guarded.port)) as sock:
        sock.sendall(head.encode() + b"RIFF" + bytes(60000))  # then goes, 940 kB short
    mine = lines_of(guarded, rid)
    assert [(r["level"], r["msg"], r.get("status")) for r in mine] == [("info", "request", 499)]
    assert_no_errors(guarded)
