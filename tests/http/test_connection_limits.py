"""The HTTP port's limits hold against hostile clients, and a flood on it leaves the others alone."""

from __future__ import annotations

import contextlib
import pathlib
import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from servers import RunningServer, rss_kib, start_server

SHOUT_LISTENING = re.compile(r"listening shout 127\.0\.0\.1:(\d+)")


@pytest.fixture(scope="module")
def limited(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("limits")
    env = {"MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(data),
           "MEDIA_MGR_HTTP_MAX_HEAD_BYTES": "8192", "MEDIA_MGR_TIMEOUT_HTTP_HEAD": "1",
           "MEDIA_MGR_HTTP_MAX_CONNECTIONS": "20"}  # fmt: skip
    srv = start_server(env, data / "log")
    yield srv
    srv.stop()


def connect(srv: RunningServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or 10 s pass)."""
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_an_endless_header_gets_431_after_one_read_and_costs_no_memory(limited: RunningServer) -> None:
    before = rss_kib(limited.proc.pid)
    sock = connect(limited)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: ")
    sent = 0
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        block = b"a" * 65536
        while sent < 64 * 1024 * 1024:  # the server must stop this long before 64 MiB
            sock.sendall(block)
            sent += len(block)
    answer = read_all(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert sent < 64 * 1024 * 1024
    assert httpx.get(f"{limited.url}/healthz").status_code == 200
    assert rss_kib(limited.proc.pid) - before < 16 * 1024


def test_a_complete_head_over_the_limit_gets_431(limited: RunningServer) -> None:
    headers = {f"x-h{i}": "v" * 100 for i in range(100)}  # ~11 KiB of fields, each short
    r = httpx.get(f"{limited.url}/healthz", headers=headers)
    assert r.status_code == 431
    assert r.json()["error"] == "head_too_large"
    assert httpx.get(f"{limited.url}/healthz", headers={"x-ok": "v" * 1000}).status_code == 200


def test_a_slow_head_gets_408_and_an_idle_connection_is_closed(limited: RunningServer) -> None:
    slow = connect(limited)
    slow.sendall(b"GET /healthz HTTP/1.1\r\n")
    idle = connect(limited)
    assert read_all(slow).startswith(b"HTTP/1.1 408 ")
    assert read_all(idle).startswith(b"HTTP/1.1 408 ")
    slow.close()
    idle.close()


def test_keep_alive_requests_each_get_the_whole_head_time(limited: RunningServer) -> None:
    with httpx.Client(base_url=limited.url) as client:
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
            time.sleep(0.6)  # under the 1 s head timeout each time, over it in total


def test_connections_over_the_cap_get_503_and_other_ports_still_answer(limited: RunningServer) -> None:
    held: list[socket.socket] = []
    try:
        # The cap (20) filled at once, well within the 1 s head time that would free slots again; the
        # server takes connections in order, so the next one is over the cap whatever the timing.
        held.extend(connect(limited) for _ in range(20))
        extra = connect(limited)
        held.append(extra)
        answer = extra.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
        shout_port = int(SHOUT_LISTENING.findall(limited.log())[-1])
        with socket.create_connection(("127.0.0.1", shout_port), timeout=5) as shout:
            shout.sendall(b"GET /nothing-here.mp3 HTTP/1.0\r\n\r\n")
            assert read_all(shout).startswith(b"HTTP/1.0 404")
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while True:
        try:
            assert httpx.get(f"{limited.url}/healthz").status_code == 200
            break
        except (httpx.HTTPError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_refusals_are_info_lines_without_tracebacks(limited: RunningServer) -> None:
    log = limited.log()
    assert "http request refused: head too large" in log
    assert "Traceback" not in log


def test_an_idle_keep_alive_connection_closes_without_an_answer(
    database_url: str, tmp_path: pathlib.Path
) -> None:
    """uvicorn's keep-alive timeout (1 s here) ends a connection idle after its answers, before the head
    timeout (3 s) would answer 408; both run from each answer's end, on one timer."""
    env = {"MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(tmp_path),
           "MEDIA_MGR_TIMEOUT_HTTP_HEAD": "3", "MEDIA_MGR_TIMEOUT_HTTP_KEEP_ALIVE": "1"}  # fmt: skip
    srv = start_server(env, tmp_path / "log")
    try:
        sock = connect(srv)
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
                answer += sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            time.sleep(0.6)  # under the keep-alive timeout each time, over it in total
        assert read_all(sock) == b""  # closed, no 408
        sock.close()
    finally:
        srv.stop()
