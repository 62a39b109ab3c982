"""Faults mid-stream: the source killed, the server SIGKILLed then restarted, PostgreSQL restarted.
What reached the server is kept (at most the last second is lost to a crash) and the state is right.
Plus a recording URL issued by one instance and used on another."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from shout_peers import (
    ShoutUrl,
    content,
    create_recording,
    kill,
    push,
    push_and_wait,
    start_shout_server,
    wait_state,
)

from servers import RunningServer
from sounds import decode, raw_mp3

BYTES_PER_SECOND = 2000  # 16 kbit/s


def progress(proc: subprocess.Popen[bytes], until_bytes: int) -> list[tuple[int, float]]:
    """Read the pusher's "sent N T" lines until N reaches ``until_bytes``."""
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"open ok"
    seen: list[tuple[int, float]] = []
    while True:
        line = proc.stdout.readline().split()
        assert line and line[0] == b"sent", line
        seen.append((int(line[1]), float(line[2])))
        if seen[-1][0] >= until_bytes:
            return seen


@pytest.fixture
def own_server(database_url: str, tmp_path: Path) -> Iterator[tuple[RunningServer, int]]:
    srv, port = start_shout_server(database_url, tmp_path / "srv")
    yield srv, port
    srv.stop()


def test_a_killed_source_leaves_a_complete_recording_of_what_arrived(
    own_server: tuple[RunningServer, int], tmp_path: Path
) -> None:
    srv, _ = own_server
    sent = raw_mp3(tmp_path / "k.mp3", seconds=8.0)
    rec = create_recording(srv)
    source = push(ShoutUrl.parse(rec["shout_url"]), tmp_path / "k.mp3", pace=True)
    try:
        seen = progress(source, 3 * BYTES_PER_SECOND)
    finally:
        kill(source)  # SIGKILL: the kernel closes its socket (FIN), as for a dead FreeSWITCH
    done = wait_state(srv, rec["id"], ("complete", "interrupted"))
    assert (done["state"], done["end_reason"]) == ("complete", "eof")
    stored = content(srv, rec["id"])
    assert len(stored) >= seen[-1][0] and sent.startswith(stored)
    assert done["duration_ms"] == round(len(decode(stored)) * 1000 / 8000)


def test_server_sigkilled_mid_stream_then_restarted_finds_it_interrupted_with_its_audio(
    database_url: str, tmp_path: Path
) -> None:
    srv, _ = start_shout_server(database_url, tmp_path / "a")
    sent = raw_mp3(tmp_path / "s.mp3", seconds=10.0)
    rec = create_recording(srv)
    source = push(ShoutUrl.parse(rec["shout_url"]), tmp_path / "s.mp3", pace=True)
    try:
        seen = progress(source, 4 * BYTES_PER_SECOND)
        killed_at = time.monotonic()
        srv.stop(signal.SIGKILL)
        out = source.communicate(timeout=30)[0]
        assert source.returncode == 2 and b"send failed" in out  # libshout: "Socket error"
    finally:
        kill(source)
    assert wait_state_db(database_url, rec["id"]) == "recording"  # nobody closed it: the process died
    again, _ = start_shout_server(database_url, tmp_path / "b")
    try:
        done = wait_state(again, rec["id"], ("complete", "interrupted"), timeout=30)
        assert (done["state"], done["end_reason"]) == ("interrupted", "crash")
        stored = content(again, rec["id"])
        assert sent.startswith(stored)
        # At most the last second is lost: everything sent a second and a half before the kill is in.
        committed_by = max((n for n, t in seen if t <= killed_at - 1.5), default=0)
        assert len(stored) >= committed_by > 0
        assert done["media_id"] == rec["id"] and done["duration_ms"] > 0  # playable, like any media
    finally:
        again.stop()


def wait_state_db(database_url: str, recording_id: str) -> str:
    out = subprocess.run(["psql", database_url, "-tAc", f"SELECT state FROM recordings WHERE id = '{recording_id}'"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return out.stdout.strip()


@pytest.mark.slow
def test_postgresql_restarted_mid_stream_loses_nothing(tmp_path: Path) -> None:
    """A private PostgreSQL (tests/private_services.py) is restarted, never the machine's."""
    from private_services import PrivatePostgres

    with PrivatePostgres() as pg:
        database_url = pg.dsn
        srv, _ = start_shout_server(database_url, tmp_path / "srv")
        try:
            started = postmaster_started(database_url)
            sent = raw_mp3(tmp_path / "pg.mp3", seconds=7.0)
            rec = create_recording(srv)
            source = push(ShoutUrl.parse(rec["shout_url"]), tmp_path / "pg.mp3", pace=True)
            try:
                progress(source, 2 * BYTES_PER_SECOND)
                pg.restart()
                out = source.communicate(timeout=60)[0]
                assert source.returncode == 0, out
            finally:
                kill(source)
            done = wait_state(srv, rec["id"], ("complete", "interrupted"), timeout=60)
            assert (done["state"], done["end_reason"]) == ("complete", "eof")
            assert content(srv, rec["id"]) == sent  # held in memory through the restart, then committed
            assert postmaster_started(database_url) != started  # it really restarted under the stream
        finally:
            srv.stop()


def postmaster_started(database_url: str) -> str:
    out = subprocess.run(["psql", database_url, "-tAc", "SELECT pg_postmaster_start_time()"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return out.stdout.strip()


def test_a_recording_url_issued_by_one_instance_is_accepted_by_another(
    server: RunningServer, database_url: str, tmp_path: Path
) -> None:
    other, _ = start_shout_server(database_url, tmp_path / "other")
    try:
        sent = raw_mp3(tmp_path / "x.mp3", seconds=2.0)
        rec = create_recording(server)  # issued by the run's server...
        url = ShoutUrl.parse(rec["shout_url"])
        url.port = int(other.log().split("listening shout 127.0.0.1:")[1].split('"')[0])  # ...used on another
        push_and_wait(url, tmp_path / "x.mp3", pace=False)
        done = wait_state(server, rec["id"], ("complete", "interrupted"))
        assert done["state"] == "complete" and content(server, rec["id"]) == sent
    finally:
        other.stop()
