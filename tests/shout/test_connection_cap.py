"""The SHOUT port's connection cap and head deadline, against a real server with a cap of 16: idle
connections fill it, a client above the cap is answered 503 with ``Retry-After`` at once, the HTTP
port keeps answering meanwhile (a flood on one port does not starve the other), every idle
connection is closed with 408 after the head timeout, and the port then takes clients again."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from shout_peers import raw_request, shout_connections, start_shout_server, status_of

from servers import RunningServer

CAP = 16
OPTIONS = b"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: libshout/2.4.6\r\n\r\n"


@pytest.fixture(scope="module")
def capped(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, int]]:
    srv, port = start_shout_server(database_url, tmp_path_factory.mktemp("shout-cap"),
                                   MEDIA_MGR_SHOUT_MAX_CONNECTIONS=str(CAP),
                                   MEDIA_MGR_TIMEOUT_SHOUT_HEAD="8")  # fmt: skip
    yield srv, port
    srv.stop()


def read_all(sock: socket.socket) -> bytes:
    got = b""
    while piece := sock.recv(4096):
        got += piece
    return got


def test_a_full_shout_port_answers_503_and_leaves_http_serving_until_idle_heads_time_out(
    capped: tuple[RunningServer, int],
) -> None:
    srv, port = capped
    idle = [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in range(CAP)]
    try:
        for _ in range(100):  # until the server has taken all of them in (it counts on accept)
            if shout_connections(srv) == CAP:
                break
        assert shout_connections(srv) == CAP
        for i in range(30):  # a flood above the cap: each answered at once, none waits for a slot
            reply = raw_request(port, OPTIONS)
            assert status_of(reply) == 503 and b"\r\nretry-after: 1\r\n" in reply.lower(), (i, reply)
            assert httpx.get(f"{srv.url}/healthz", timeout=5).status_code == 200  # the other port serves
        replies = [read_all(sock) for sock in idle]  # nothing sent: closed at the head deadline
    finally:
        for sock in idle:
            sock.close()
    assert [status_of(r) for r in replies] == [408] * CAP
    assert status_of(raw_request(port, OPTIONS)) == 204  # the slots are free again
