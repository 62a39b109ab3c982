"""The SHOUT port over raw sockets: every probe libshout sends answered as it needs, every bad or
slow head answered then closed, auth refused without disturbing a live source."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from shout_peers import (
    ShoutUrl,
    content,
    create_recording,
    push,
    raw_request,
    recording,
    start_shout_server,
    status_of,
    wait_state,
)

from servers import RunningServer
from sounds import raw_mp3

# libshout 2.4.6's requests, byte for byte (reference 3.5), with our port filled in.
OPTIONS = b"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: libshout/2.4.6\r\nConnection: Upgrade\r\nUpgrade: TLS/1.0, HTTP/1.1\r\n\r\n"
POKE = b"GET /admin/!POKE HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: libshout/2.4.6\r\n\r\n"
CHALLENGE = (b"SOURCE /live.mp3 HTTP/1.0\r\nHost: 127.0.0.1:%d\r\nUser-Agent: libshout/2.4.6\r\n"
             b"Content-Type: audio/mpeg\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\nice-public: 0\r\n"
             b"ice-name: no name\r\nice-url: http://www.freeswitch.org\r\n"
             b"ice-description: FreeSWITCH mod_shout Broadcasting Module\r\nice-audio-info: bitrate=24000\r\n"
             b"Prefer: return=minimal\r\n\r\n")  # fmt: skip
PUT_AUTH = (b"PUT /live.mp3 HTTP/1.1\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\nHost: 127.0.0.1:%d\r\n"
            b"User-Agent: libshout/2.4.6\r\nContent-Type: audio/mpeg\r\nExpect: 100-continue\r\nice-public: 0\r\n"
            b"ice-name: no name\r\nPrefer: return=minimal\r\n\r\n")  # fmt: skip


@pytest.fixture(scope="module")
def shout(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, int]]:
    srv, port = start_shout_server(database_url, tmp_path_factory.mktemp("shout-protocol"))
    yield srv, port
    srv.stop()


@pytest.fixture
def ask(shout: tuple[RunningServer, int]) -> Callable[..., bytes]:
    port = shout[1]
    return lambda data, **kw: raw_request(port, data.replace(b"%d", str(port).encode()), **kw)


def test_options_probe_gets_204_allowing_put(ask: Callable[..., bytes]) -> None:
    reply = ask(OPTIONS)
    assert status_of(reply) == 204
    assert b"Allow: GET, PUT, OPTIONS, SOURCE\r\n" in reply and b"Content-Length: 0\r\n" in reply


def test_poke_gets_icecasts_400_which_libshout_takes_as_go_on(ask: Callable[..., bytes]) -> None:
    assert status_of(ask(POKE)) == 400


def test_unauthenticated_challenge_gets_401_with_a_basic_challenge_and_allow(
    ask: Callable[..., bytes],
) -> None:
    reply = ask(CHALLENGE)
    assert status_of(reply) == 401
    assert (
        b'WWW-Authenticate: Basic realm="media-mgr"\r\n' in reply
        and b"Allow: GET, PUT, OPTIONS, SOURCE" in reply
    )


def test_wrong_password_gets_401(ask: Callable[..., bytes]) -> None:
    wrong = PUT_AUTH.replace(b"c291cmNlOmhhY2ttZQ==", b"c291cmNlOndyb25n")  # source:wrong
    assert status_of(ask(wrong)) == 401


def test_put_with_expect_gets_100_continue_before_any_body(
    shout: tuple[RunningServer, int], tmp_path: Path
) -> None:
    _srv, port = shout
    mount = f"/expect-{time.monotonic_ns()}.mp3"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(PUT_AUTH.replace(b"%d", str(port).encode()).replace(b"/live.mp3", mount.encode()))
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"  # immediately: libshout would stall 4 s
        sock.sendall(raw_mp3(tmp_path / "e.mp3", seconds=1.0))
        sock.shutdown(socket.SHUT_WR)
        final = sock.recv(1000)
    assert status_of(final) == 200  # Icecast 2.5's final answer once the stream is stored


def test_oversized_head_gets_431_and_a_close(ask: Callable[..., bytes]) -> None:
    head = b"SOURCE /big.mp3 HTTP/1.0\r\n" + b"ice-name: " + b"x" * 20000 + b"\r\n\r\n"
    assert status_of(ask(head)) == 431


def test_not_http_gets_400_at_once(ask: Callable[..., bytes]) -> None:
    tls_hello = bytes.fromhex("160301020001") + b"\x00" * 100
    assert status_of(ask(tls_hello)) == 400
    assert status_of(ask(b"SOURCE hackme /live.mp3\n\n")) == 400  # the old xaudiocast line


def test_half_a_head_then_eof_gets_400(ask: Callable[..., bytes]) -> None:
    assert status_of(ask(b"SOURCE /x.mp3 HTTP/1.0\r\nHost: a\r\n", shut=True)) == 400


def test_slow_loris_head_is_cut_off_with_408(shout: tuple[RunningServer, int]) -> None:
    port = shout[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reply = b""
        for byte in b"SOURCE /slow.mp3 HTTP/1.0\r\nice-name: " + b"z" * 200:  # one byte every 50 ms
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.05)
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                reply += sock.recv(1000)
            sock.setblocking(True)
            if reply:
                break
        sock.settimeout(10)
        while b"\r\n\r\n" not in reply:
            piece = sock.recv(1000)
            if not piece:
                break
            reply += piece
    assert status_of(reply) == 408


def test_silent_connection_gets_408(ask: Callable[..., bytes]) -> None:
    assert status_of(ask(b"")) == 408


def test_unknown_method_gets_405_and_unknown_mount_404(ask: Callable[..., bytes]) -> None:
    assert status_of(ask(b"DELETE /x.mp3 HTTP/1.1\r\n\r\n")) == 405
    assert status_of(ask(b"GET /nobody-here.mp3 HTTP/1.1\r\n\r\n")) == 404


def test_ogg_source_is_refused_with_415(ask: Callable[..., bytes]) -> None:
    ogg = PUT_AUTH.replace(b"audio/mpeg", b"audio/ogg").replace(b"/live.mp3", b"/ogg.ogg")
    assert status_of(ask(ogg)) == 415


def test_second_source_on_a_live_mount_gets_403_and_the_first_is_unharmed(
    shout: tuple[RunningServer, int], tmp_path: Path
) -> None:
    srv, port = shout
    data = raw_mp3(tmp_path / "first.mp3", seconds=3.0)
    rec = create_recording(srv)
    url = ShoutUrl.parse(rec["shout_url"])
    first = push(url, tmp_path / "first.mp3", pace=True)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == b"open ok"
        time.sleep(0.5)
        second = ask_put(port, url)
        assert status_of(second) == 403
        wrong = ask_put(port, ShoutUrl(url.user, "not-the-token", url.host, url.port, url.mount))
        assert status_of(wrong) == 401
        out, _ = first.communicate(timeout=30)
        assert first.returncode == 0, out
    finally:
        first.kill()
    done = wait_state(srv, rec["id"], ("complete", "interrupted"))
    assert done["state"] == "complete"
    assert content(srv, rec["id"]) == data
    again = ask_put(port, url)  # and once it is complete, the recording takes no other source
    assert status_of(again) == 403


def ask_put(port: int, url: ShoutUrl) -> bytes:
    import base64

    auth = base64.b64encode(f"{url.user}:{url.password}".encode())
    head = (b"PUT %s HTTP/1.1\r\nAuthorization: Basic %s\r\nContent-Type: audio/mpeg\r\n"
            b"Expect: 100-continue\r\n\r\n") % (url.mount.encode(), auth)  # fmt: skip
    return raw_request(port, head)


def test_a_silent_source_is_ended_after_the_source_timeout_and_gives_its_recording_back(
    shout: tuple[RunningServer, int],
) -> None:
    srv, port = shout
    rec = create_recording(srv)
    url = ShoutUrl.parse(rec["shout_url"])
    import base64

    auth = base64.b64encode(f"{url.user}:{url.password}".encode())
    head = b"SOURCE %s HTTP/1.0\r\nAuthorization: Basic %s\r\nContent-Type: audio/mpeg\r\n\r\n" % (
        url.mount.encode(), auth)  # fmt: skip
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head)
        assert sock.recv(100) == b"HTTP/1.0 200 OK\r\n\r\n"
        assert sock.recv(100) == b""  # nothing sent: closed by us after MEDIA_MGR_TIMEOUT_SHOUT_SOURCE
    given_back = f'"msg": "source ended without audio; recording given back", "mount": "{url.mount}"'
    assert given_back in srv.log()  # before the close: its next try may use the URL again
    assert recording(srv, rec["id"])["state"] == "pending"
