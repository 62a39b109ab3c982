"""Fuzzing the SHOUT port of a real running server with hostile request heads (``hostile_heads``:
fixed seed, about 800 connections, a few seconds). Every head gets the answer its kind allows and
no source is ever accepted; afterwards the server still serves (a libshout source is stored byte for
byte, a listener hears its mount), its open files and memory are back near where they were, and
its log holds no error, no traceback and no refused client above info level."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hostile_heads import Case, HeadFuzzer, basic, exchange, source_head, status_or_none
from shout_peers import (
    ShoutUrl,
    content,
    create_recording,
    push,
    recording,
    shout_connections,
    start_shout_server,
    wait_state,
)

from servers import RunningServer, rss_kib
from sounds import raw_mp3

SEED = 20261130
PASSWORD = "hackme"  # start_shout_server's source password
FD_SLACK = 4  # open files may differ by this much (a pooled database connection, a log handle)
RSS_SLACK_KIB = 8 * 1024  # memory may stay this much higher (allocator arenas): 10 KiB a connection


@pytest.fixture(scope="module")
def shout(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, int]]:
    srv, port = start_shout_server(database_url, tmp_path_factory.mktemp("shout-fuzz"),
                                   MEDIA_MGR_TIMEOUT_SHOUT_HEAD="1.0")  # fmt: skip
    yield srv, port
    srv.stop()


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settle_fds(pid: int, at_most: int, timeout: float = 15.0) -> int:
    """The server's open files once its closed connections are gone (or what is left at ``timeout``)."""
    deadline = time.monotonic() + timeout
    while (now := open_fds(pid)) > at_most and time.monotonic() < deadline:
        time.sleep(0.1)
    return now


def run_cases(port: int, cases: list[Case]) -> list[str]:
    """Send each case on its own connection; the ways answers broke their case's rule."""
    broken = []
    for case in cases:
        reply = exchange(port, case.data, reset=case.reset)
        status = status_or_none(reply)
        if reply.startswith((b"HTTP/1.1 100", b"HTTP/1.0 200", b"HTTP/1.1 200")):
            broken.append(f"{case.kind}: accepted: {case.data[:120]!r} -> {reply[:80]!r}")
        elif case.reset or (not reply and case.may_be_empty):
            continue
        elif status not in case.expect:
            broken.append(f"{case.kind}: {case.data[:120]!r} -> {reply[:80]!r}, wanted {sorted(case.expect)}")
    return broken


def slow_heads(port: int, count: int) -> list[bytes]:
    """``count`` clients each sending a source head a byte every 0.1 s, at once: what each heard."""
    replies: list[bytes] = [b""] * count

    def one(i: int) -> None:
        head = source_head(b"/fuzz-slow-%d.mp3" % i)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.settimeout(0.1)
            for byte in head:
                try:
                    sock.sendall(bytes([byte]))
                    replies[i] += sock.recv(1000)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not replies[i] or replies[i].endswith(b"\n"):
                    break
            sock.settimeout(10)
            try:
                while piece := sock.recv(1000):
                    replies[i] += piece
            except OSError:
                pass

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return replies


def log_entries(srv: RunningServer) -> list[dict[str, object]]:
    return [json.loads(line) for line in srv.log().splitlines() if line.startswith("{")]


def test_hostile_heads_leave_the_server_serving_and_leak_nothing(
    shout: tuple[RunningServer, int], tmp_path: Path
) -> None:
    srv, port = shout
    pid = srv.proc.pid
    target = create_recording(srv)  # a real pending recording: the fuzz knows its mount, not its token
    url = ShoutUrl.parse(target["shout_url"])
    fuzzer = HeadFuzzer(SEED, url.mount.encode(), url.password.encode(), PASSWORD.encode())
    cases = fuzzer.cases()
    assert 500 < len(cases) < 2000  # bounded: a few seconds on loopback
    assert run_cases(port, cases[::10]) == []  # warm up (imports, allocator arenas) before measuring
    fds_before, rss_before = open_fds(pid), rss_kib(pid)

    broken = run_cases(port, cases)
    slow = slow_heads(port, 6)

    assert broken == [], "\n".join(broken[:20])
    assert [status_or_none(r) for r in slow] == [408] * 6
    assert srv.proc.poll() is None
    assert settle_fds(pid, fds_before + FD_SLACK) <= fds_before + FD_SLACK
    assert rss_kib(pid) <= rss_before + RSS_SLACK_KIB
    deadline = time.monotonic() + 10
    while shout_connections(srv) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert shout_connections(srv) == 0  # every connection left the server's own count
    assert recording(srv, target["id"])["state"] == "pending"  # no fuzz case took it

    # Still serving: the real libshout source is taken and stored byte for byte, a listener hears it.
    sent = raw_mp3(tmp_path / "after.mp3", seconds=3.0)
    source = push(url, tmp_path / "after.mp3", pace=True)
    try:
        assert source.stdout is not None and source.stdout.readline().strip() == b"open ok"
        listener = subprocess.run(["curl", "-sS", "--max-time", "30", f"http://127.0.0.1:{port}{url.mount}"],
                                  capture_output=True, timeout=40)  # fmt: skip
        out, _ = source.communicate(timeout=30)
        assert source.returncode == 0, out
    finally:
        source.kill()
    done = wait_state(srv, target["id"], ("complete", "interrupted"))
    assert (done["state"], done["end_reason"]) == ("complete", "eof")
    assert content(srv, target["id"]) == sent
    assert listener.returncode == 0 and len(listener.stdout) > 1000 and sent.endswith(listener.stdout)
    assert httpx.get(f"{srv.url}/healthz", timeout=10).status_code == 200

    # The log: every refused client at info level, nothing worse, no traceback; no fuzz source began.
    entries = log_entries(srv)
    levels = Counter(str(e.get("level")) for e in entries)
    assert levels["error"] == levels["critical"] == 0, [e for e in entries if e.get("level") == "error"][:5]
    shout_levels = Counter(str(e.get("level")) for e in entries if e.get("logger") == "media_mgr.shout")
    assert set(shout_levels) == {"info"}, shout_levels
    assert "Traceback" not in srv.log() and not [e for e in entries if "exc" in e]
    refused = Counter(str(e.get("msg")) for e in entries if e.get("logger") == "media_mgr.shout")
    assert refused["bad request head"] > 100 and refused["request head too slow"] >= 6
    assert refused["incomplete request head"] > 500  # the cut heads: each one line, at info
    started = [e["mount"] for e in entries if e.get("msg") == "source connected"]
    assert [m for m in started if str(m).startswith("/fuzz") or m == url.mount] == [url.mount]


def test_an_accepted_source_with_junk_ice_headers_reaches_listeners_cleaned(
    shout: tuple[RunningServer, int], tmp_path: Path
) -> None:
    """ICE headers of an authenticated source go out in listeners' ``icy-*`` headers: whatever bytes
    a source puts there, a listener gets a well-formed head and the audio byte for byte."""
    _srv, port = shout
    sent = raw_mp3(tmp_path / "ice.mp3", seconds=3.0)
    junk = bytes(b for b in random.Random(SEED).randbytes(300) if b not in b"\r\n") + b"\x00\x7f\x85\xa0<b>"
    mount = f"/ice-junk-{time.monotonic_ns()}.mp3".encode()
    head = source_head(mount, basic(b"source:" + PASSWORD.encode()),
                       extra=b"ice-name: " + junk + b"\r\nice-url: " + junk[::-1] + b"\r\n")  # fmt: skip
    with socket.create_connection(("127.0.0.1", port), timeout=20) as src:
        src.sendall(head)
        assert src.recv(100) == b"HTTP/1.0 200 OK\r\n\r\n"
        src.sendall(sent[:4000])  # the first frames make the mount live for the listener
        with socket.create_connection(("127.0.0.1", port), timeout=20) as lis:
            lis.sendall(b"GET %s HTTP/1.0\r\n\r\n" % mount)
            src.sendall(sent[4000:])
            src.shutdown(socket.SHUT_WR)
            heard = b""
            while piece := lis.recv(65536):
                heard += piece
        assert src.recv(100) == b""
    reply_head, _, body = heard.partition(b"\r\n\r\n")
    lines = reply_head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.0 200 OK" and all(b": " in line for line in lines[1:])
    icy = dict(line.split(b": ", 1) for line in lines[1:] if line.lower().startswith(b"icy-"))
    assert icy[b"icy-name"] and all(0x20 <= c < 0x7F or c >= 0xA1 for c in icy[b"icy-name"] + icy[b"icy-url"])
    assert len(body) > 1000 and sent.endswith(body)
