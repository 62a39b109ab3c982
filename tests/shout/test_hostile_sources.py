"""Sources that send no audio: bytes that are not MPEG end the recording ``interrupted`` with
``not_mpeg`` (nothing unreadable is stored, a PUT hears 415); a source that sends nothing at all
gives its recording back, so the same URL records when mod_shout tries again; an ad-hoc recording
(source password) that got nothing is closed ``interrupted`` with ``no_audio``."""

from __future__ import annotations

import base64
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from shout_peers import (
    ShoutUrl,
    content,
    create_recording,
    push,
    push_and_wait,
    recording,
    start_shout_server,
    status_of,
    wait_state,
)

from media_mgr.audio.mpeg import MpegFramer
from media_mgr.shout.source import CONFIRM_FRAMES

from servers import RunningServer
from sounds import raw_mp3, tone

JUNK_SEED = 1101


@pytest.fixture(scope="module")
def shout(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, int]]:
    srv, port = start_shout_server(database_url, tmp_path_factory.mktemp("shout-hostile"))
    yield srv, port
    srv.stop()


def junk(size: int) -> bytes:
    """Random bytes with no 0xFF at all, so no MPEG sync can hide in them by chance."""
    return random.Random(JUNK_SEED).randbytes(size).replace(b"\xff", b"\x00")


def source_head(url: ShoutUrl, method: bytes = b"SOURCE") -> bytes:
    auth = base64.b64encode(f"{url.user}:{url.password}".encode())
    if method == b"PUT":
        return (b"PUT %s HTTP/1.1\r\nAuthorization: Basic %s\r\nContent-Type: audio/mpeg\r\n"
                b"Expect: 100-continue\r\n\r\n") % (url.mount.encode(), auth)  # fmt: skip
    return b"SOURCE %s HTTP/1.0\r\nAuthorization: Basic %s\r\nContent-Type: audio/mpeg\r\n\r\n" % (
        url.mount.encode(), auth)  # fmt: skip


def send_all_until_closed(sock: socket.socket, data: bytes) -> bytes:
    """Send ``data`` (the server may cut us off part way), then read whatever it answers."""
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    got = b""
    try:
        while piece := sock.recv(4096):
            got += piece
    except OSError:
        pass
    return got


def assert_not_mpeg(srv: RunningServer, rec_id: str) -> dict[str, Any]:
    done = wait_state(srv, rec_id, ("complete", "interrupted"))
    assert (done["state"], done["end_reason"], done["size"]) == ("interrupted", "not_mpeg", 0), done
    assert "source sent no MPEG audio" in srv.log()
    return done


def test_a_source_of_endless_junk_is_cut_off_and_ends_not_mpeg(shout: tuple[RunningServer, int]) -> None:
    srv, port = shout
    rec = create_recording(srv)
    body = junk(4 * 1024 * 1024)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(source_head(ShoutUrl.parse(rec["shout_url"])))
        assert sock.recv(100) == b"HTTP/1.0 200 OK\r\n\r\n"
        send_all_until_closed(sock, body)  # far more than the server looks at
    assert_not_mpeg(srv, rec["id"])


def test_a_put_of_a_little_junk_hears_415_as_its_final_answer(shout: tuple[RunningServer, int]) -> None:
    srv, port = shout
    rec = create_recording(srv)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(source_head(ShoutUrl.parse(rec["shout_url"]), b"PUT"))
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        final = send_all_until_closed(sock, junk(3000))  # ends before the server's limit: EOF decides
    assert status_of(final) == 415 and final.endswith(b"no MPEG audio frame received\n")
    assert_not_mpeg(srv, rec["id"])


def test_libshout_pushing_a_wav_file_by_mistake_stores_nothing(
    shout: tuple[RunningServer, int], tmp_path: Path
) -> None:
    srv, _ = shout
    tone(tmp_path / "oops.wav", seconds=2.0)  # 32 kB of PCM where MP3 was promised
    rec = create_recording(srv)
    proc = push(ShoutUrl.parse(rec["shout_url"]), tmp_path / "oops.wav", pace=False)
    out, _ = proc.communicate(timeout=60)
    assert b"open ok" in out  # the head was fine; the body is what is refused
    assert_not_mpeg(srv, rec["id"])


def test_libshout_sending_nothing_leaves_the_url_working_for_the_retry(
    shout: tuple[RunningServer, int], tmp_path: Path
) -> None:
    srv, _ = shout
    (tmp_path / "empty.mp3").write_bytes(b"")
    sent = raw_mp3(tmp_path / "real.mp3", seconds=2.0)
    rec = create_recording(srv)
    url = ShoutUrl.parse(rec["shout_url"])
    assert "open ok" in push_and_wait(url, tmp_path / "empty.mp3")  # accepted, then closed at once
    # The log line comes before the row is given back (and the module-scoped server has logged it for
    # earlier tests too): wait for the row itself.
    deadline = time.monotonic() + 10
    while recording(srv, rec["id"])["state"] != "pending" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert recording(srv, rec["id"])["state"] == "pending"  # not used up
    assert "recording given back" in srv.log()
    push_and_wait(url, tmp_path / "real.mp3", pace=False)  # mod_shout's next try, same URL
    done = wait_state(srv, rec["id"], ("complete", "interrupted"))
    assert (done["state"], done["end_reason"]) == ("complete", "eof")
    assert content(srv, rec["id"]) == sent


def test_an_adhoc_source_sending_nothing_is_closed_as_no_audio(
    shout: tuple[RunningServer, int], tmp_path: Path
) -> None:
    srv, port = shout
    (tmp_path / "empty.mp3").write_bytes(b"")
    name = f"adhoc-{time.monotonic_ns()}.mp3"
    push_and_wait(ShoutUrl("source", "hackme", "127.0.0.1", port, f"/{name}"), tmp_path / "empty.mp3")
    deadline = time.monotonic() + 30
    while True:
        items = httpx.get(f"{srv.url}/v1/recordings", params={"limit": 500}, timeout=10).json()["items"]
        mine = [r for r in items if r["name"] == name and r["state"] != "recording"]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(r["state"], r["end_reason"], r["size"]) for r in mine] == [("interrupted", "no_audio", 0)]


def test_a_source_shorter_than_the_confirmation_run_is_still_stored(
    shout: tuple[RunningServer, int], tmp_path: Path
) -> None:
    """Fewer frames than the server waits for before trusting a stream: the end decides, and it is MP3."""
    srv, _ = shout
    sent = raw_mp3(tmp_path / "blip.mp3", seconds=0.05)
    frames = MpegFramer()
    frames.feed(sent)
    frames.flush()
    assert 0 < frames.frames < CONFIRM_FRAMES
    rec = create_recording(srv)
    push_and_wait(ShoutUrl.parse(rec["shout_url"]), tmp_path / "blip.mp3", pace=False)
    done = wait_state(srv, rec["id"], ("complete", "interrupted"))
    assert (done["state"], done["end_reason"]) == ("complete", "eof")
    assert content(srv, rec["id"]) == sent
