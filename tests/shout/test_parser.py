"""The request-head parser with bytes alone: the real clients' captures, leniency, refusals."""

from __future__ import annotations

import pytest

from media_mgr.shout.parser import HeadError, HeadParser, ShoutRequest

LIBSHOUT_PUT = (b"PUT /live.mp3 HTTP/1.1\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\nHost: 127.0.0.1:18001\r\n"
                b"User-Agent: libshout/2.4.6\r\nContent-Type: audio/mpeg\r\nExpect: 100-continue\r\nice-public: 0\r\n"
                b"ice-name: no name\r\nice-url: http://www.freeswitch.org\r\n"
                b"ice-description: FreeSWITCH mod_shout Broadcasting Module\r\nice-audio-info: bitrate=24000\r\n"
                b"Prefer: return=minimal\r\n\r\n")  # fmt: skip
FFMPEG_PUT = (b"PUT /ff.mp3 HTTP/1.1\r\nUser-Agent: Lavf/59.27.100\r\nAccept: */*\r\nExpect: 100-continue\r\n"
              b"Connection: close\r\nHost: 127.0.0.1:18001\r\nContent-Type: audio/mpeg\r\nIcy-MetaData: 1\r\n"
              b"Ice-Public: 0\r\nAuthorization: Basic c291cmNlOnMzY3JldA==\r\n\r\n")  # fmt: skip


def parse(data: bytes, step: int = 0, **kw: int) -> tuple[ShoutRequest, bytes]:
    parser = HeadParser(**kw)
    pieces = [data[i : i + step] for i in range(0, len(data), step)] if step else [data]
    for piece in pieces:
        got = parser.feed(piece)
        if got is not None:
            return got, parser.rest
    raise AssertionError("head not complete")


@pytest.mark.parametrize("step", [0, 1, 7])
def test_libshout_put_in_any_split(step: int) -> None:
    req, rest = parse(LIBSHOUT_PUT + b"\xff\xe3\x28\xc4", step)
    assert (req.method, req.path, req.version) == ("PUT", "/live.mp3", "1.1")
    assert req.basic_auth == ("source", "hackme") and req.expects_continue
    assert req.header("ice-audio-info") == "bitrate=24000" and req.header("content-type") == "audio/mpeg"
    assert rest == b"\xff\xe3\x28\xc4" or step  # the body's first bytes, when they came with the head


def test_ffmpeg_put_with_capitalised_ice_headers() -> None:
    req, _ = parse(FFMPEG_PUT)
    assert req.basic_auth == ("source", "s3cret") and req.header("ice-public") == "0"


def test_lenient_headers_bare_lf_no_space_folding_and_junk_lines() -> None:
    req, rest = parse(b"SOURCE /x.mp3?y=1 HTTP/1.0\nice-name:no name\nice-description: a\n  folded\nnot a header\n"
                      b"X-Two: 1\nx-two: 2\n\nBODY")  # fmt: skip
    assert (req.path, req.query) == ("/x.mp3", "y=1")
    assert req.header("ice-name") == "no name" and req.header("ice-description") == "a folded"
    assert req.header("x-two") == "1, 2" and rest == b"BODY"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"\x16\x03\x01\x00\xa5\x01", 400),  # a TLS hello: refused before any newline
        (b"get /x HTTP/1.0\r\n\r\n", 400),
        (b"SOURCE hackme /live.mp3\n\n", 400),  # xaudiocast, not Icecast 2
        (b"GET /x HTTP/2.0\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\n" + b"X: y\r\n" * 100 + b"\r\n", 431),  # too many header lines
        (b"GET /x HTTP/1.1\r\nX: " + b"y" * 9000, 431),  # a head that never ends within the limit
        (b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 400),
    ],
)
def test_refused_heads(data: bytes, status: int) -> None:
    with pytest.raises(HeadError) as err:
        parse(data, max_headers=64)
    assert err.value.status == status


def test_basic_auth_variants() -> None:
    def auth(value: str) -> tuple[str, str] | None:
        return ShoutRequest("PUT", "/", "1.1", {"authorization": value}).basic_auth

    assert auth("Basic dXNlcjpwYTpzcw==") == ("user", "pa:ss")  # split at the first colon
    assert auth("basic dXNlcjo=") == ("user", "")
    assert auth("Basic !!!") is None and auth("Bearer x") is None and auth("Basic dXNlcg==") is None


@pytest.mark.parametrize("blank", [b"\r\n\r\n", b"\n\n"])
def test_a_head_sent_a_byte_at_a_time_is_searched_in_linear_work(blank: bytes) -> None:
    """A slow loris's 8 KiB head, one byte per packet: each byte is searched a few times, not once per
    packet after it (which cost 170 ms of event loop per connection, 4096 connections at once)."""
    head = b"SOURCE /x.mp3 HTTP/1.0\r\nice-name: " + b"a" * 8000 + blank
    parser = HeadParser(8192)
    for i in range(len(head) - 1):
        assert parser.feed(head[i : i + 1]) is None
    request = parser.feed(head[-1:])
    assert request is not None and request.header("ice-name") == "a" * 8000
    assert parser.scanned <= 5 * len(head)  # each byte with the 3 before it, and the request line once more
