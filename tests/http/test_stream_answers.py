"""Stream URLs answered by the HTTP protocol itself (``StreamAnswers``): a URL the ASGI path served
from memory is answered again before ASGI, and must stay indistinguishable from it: the same bytes
and headers, the same access line and metrics, and never an answer a change has made wrong
(replaced, revoked), over keep-alive, pipelining and HTTP/1.0 connections, as clients send them.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import httpx
import pytest

from servers import RunningServer, start_server
from sounds import tone

ROUTE = 'route="/single/{token}/{name}"'


def upload(srv: RunningServer, path: Path) -> str:
    with path.open("rb") as f:
        r = httpx.post(f"{srv.url}/v1/media", files={"file": (path.name, f)}, timeout=30)
    assert r.status_code == 201, r.text
    return str(r.json()["media_name"])


def stream_url(srv: RunningServer, media_name: str) -> str:
    r = httpx.post(f"{srv.url}/v1/stream-urls", json={"media_name": media_name})
    assert r.status_code == 200, r.text
    return str(r.json()["stream_url"])


def request(url: str, *headers: str, version: str = "1.1") -> bytes:
    path = "/" + url.split("/", 3)[3]
    lines = [f"GET {path} HTTP/{version}", "Host: 127.0.0.1", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Reader:
    """Responses read one by one off a raw socket (keep-alive, pipelined)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(1 << 16)
        self.buf += data
        return bool(data)

    def response(self) -> tuple[int, list[tuple[str, str]], bytes]:
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(), self.buf
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = [(n.lower(), v) for n, v in (line.split(": ", 1) for line in lines)]
        length = int(dict(headers)["content-length"])
        while len(self.buf) < length:
            assert self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return int(status_line.split()[1]), headers, body

    def closed(self) -> bool:
        return not self.buf and not self._fill()


def metric(srv: RunningServer, name: str, labels: str) -> float:
    text = httpx.get(f"{srv.url}/metrics").text
    m = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_repeated_fetches_are_the_same_answer_with_access_lines_and_metrics(
    server: RunningServer, audio_dir: Path
) -> None:
    wav = tone(audio_dir / "again.wav", seconds=1)
    url = stream_url(server, upload(server, wav))
    token = url.split("/")[4]
    before = metric(server, "media_mgr_http_requests_total", f'{ROUTE},status="200"')
    served = metric(server, "media_mgr_served_bytes_total", 'kind="wav"')
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        reader = Reader(sock)
        answers = []
        for n in range(4):  # the first goes through ASGI, the others are answered before it
            sock.sendall(request(url, f"X-Request-Id: again-{n}"))
            answers.append(reader.response())
    for n, (status, headers, body) in enumerate(answers):
        assert status == 200
        assert body == wav.read_bytes()
        assert dict(headers)["x-request-id"] == f"again-{n}"
        assert [h for h in headers if h[0] not in ("date", "x-request-id")] == [
            h for h in answers[0][1] if h[0] not in ("date", "x-request-id")
        ]
        assert [h[0] for h in headers] == [h[0] for h in answers[0][1]]
    assert "connection" not in dict(answers[-1][1])
    assert metric(server, "media_mgr_http_requests_total", f'{ROUTE},status="200"') == before + 4
    assert metric(server, "media_mgr_served_bytes_total", 'kind="wav"') == served + 4 * wav.stat().st_size
    log = server.log()
    for n in range(4):
        line = next(line for line in log.splitlines() if f'"request_id": "again-{n}"' in line)
        assert '"msg": "request"' in line and '"status": 200' in line and '"method": "GET"' in line
        assert token not in line and "/single/***/" in line


def test_a_known_url_still_gets_each_header_its_answer(server: RunningServer, audio_dir: Path) -> None:
    """The protocol answers a plain GET before the parser; what it does not take is parsed as ever."""
    wav = tone(audio_dir / "headers.wav", seconds=0.5)
    data = wav.read_bytes()
    url = stream_url(server, upload(server, wav))
    assert httpx.get(url).content == data  # known from now on
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        reader = Reader(sock)
        sock.sendall(request(url, "RANGE: bytes=0-9"))
        status, _, body = reader.response()
        assert (status, body) == (206, data[:10])
        sock.sendall(request(url, "x-REQUEST-id:   MiXed-1"))
        status, headers, body = reader.response()
        assert (status, body, dict(headers)["x-request-id"]) == (200, data, "MiXed-1")
        head = request(url)
        sock.sendall(head[:20])  # a head in two pieces
        sock.sendall(head[20:])
        assert reader.response()[2] == data
        sock.sendall(request(url, "Connection: close"))
        status, headers, body = reader.response()
        assert (status, body, dict(headers)["connection"]) == (200, data, "close")
        assert reader.closed()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        reader = Reader(sock)
        sock.sendall(request(url, "Bad Header: x"))  # no space is allowed in a name
        assert reader.response()[0] == 400
        assert reader.closed()


def test_pipelined_requests_are_answered_in_order(server: RunningServer, audio_dir: Path) -> None:
    wav = tone(audio_dir / "pipe.wav", seconds=1)
    data = wav.read_bytes()
    url = stream_url(server, upload(server, wav))
    assert httpx.get(url).content == data  # known: the next ones may be answered before ASGI
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(request(url) + request(url, "Range: bytes=0-99") + request(url) + request(url))
        reader = Reader(sock)
        got = [reader.response() for _ in range(4)]
    assert [status for status, _, _ in got] == [200, 206, 200, 200]
    assert [body for _, _, body in got] == [data, data[:100], data, data]


def test_http_1_0_gets_connection_close_and_the_connection_ends(
    server: RunningServer, audio_dir: Path
) -> None:
    wav = tone(audio_dir / "old.wav", seconds=0.5)
    url = stream_url(server, upload(server, wav))
    assert httpx.get(url).content == wav.read_bytes()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(request(url, version="1.0"))
        reader = Reader(sock)
        status, headers, body = reader.response()
        assert (status, body) == (200, wav.read_bytes())
        assert dict(headers)["connection"] == "close"
        assert reader.closed()


def test_replaced_after_repeated_fetches_is_410(server: RunningServer, audio_dir: Path) -> None:
    wav = tone(audio_dir / "r1.wav", seconds=0.5)
    name = upload(server, wav)
    url = stream_url(server, name)
    for _ in range(3):
        assert httpx.get(url).content == wav.read_bytes()
    new = tone(audio_dir / "r2.wav", seconds=0.5, freq=880)
    item_id = url.rsplit("/", 1)[1].split(".")[0]
    assert httpx.put(f"{server.url}/v1/media/{item_id}/content", content=new.read_bytes()).status_code < 300
    r = httpx.get(url)
    assert r.status_code == 410 and "replaced" in r.json()["detail"]
    assert httpx.get(stream_url(server, name)).content == new.read_bytes()


def test_revoked_after_repeated_fetches_is_410(server: RunningServer, audio_dir: Path) -> None:
    wav = tone(audio_dir / "rv.wav", seconds=0.5)
    name = upload(server, wav)
    url, other = stream_url(server, name), stream_url(server, name)
    for _ in range(3):
        assert httpx.get(url).status_code == 200
        assert httpx.get(other).status_code == 200
    assert httpx.post(f"{server.url}/v1/stream-urls/revoke", json={"stream_url": url}).status_code == 204
    assert httpx.get(url).status_code == 410
    assert httpx.get(other).content == wav.read_bytes()


def test_a_deleted_item_is_410_after_repeated_fetches(server: RunningServer, audio_dir: Path) -> None:
    wav = tone(audio_dir / "del.wav", seconds=0.5)
    url = stream_url(server, upload(server, wav))
    for _ in range(3):
        assert httpx.get(url).status_code == 200
    item_id = url.rsplit("/", 1)[1].split(".")[0]
    assert httpx.delete(f"{server.url}/v1/media/{item_id}").status_code < 300
    assert httpx.get(url).status_code == 410


def test_an_expired_url_is_410_after_repeated_fetches(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, audio_dir: Path
) -> None:
    data = tmp_path_factory.mktemp("short_ttl")
    srv = start_server({"MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(data),
                        "MEDIA_MGR_URL_TTL": "2"}, data / "log")  # fmt: skip
    try:
        url = stream_url(srv, upload(srv, tone(audio_dir / "ttl.wav", seconds=0.5)))
        for _ in range(3):
            assert httpx.get(url).status_code == 200
        time.sleep(3.1)
        r = httpx.get(url)
        assert r.status_code == 410 and r.json()["error"] == "gone"
    finally:
        srv.stop()
