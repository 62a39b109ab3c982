"""Two ``media-mgr serve`` on one private PostgreSQL (tests/private_services.py) while it restarts,
then one of them SIGKILLed: a live recording is never taken over, a dead one is closed once.

A python-shout source (mod_shout's settings) records real MP3 in real time on instance A. The
database is stopped for longer than the recovery grace and started again: A takes its owner lock
again and keeps every byte, B (whose recovery runs all along) closes nothing. Then A is killed
mid-recording: B closes that recording as ``interrupted``/``crash``, exactly once.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from private_services import PrivatePostgres
from shout_peers import ShoutUrl, content, create_recording, kill, push, start_shout_server, wait_state

from media_mgr.store.owner_lock import LOCK_NAMESPACE

from servers import RunningServer
from sounds import raw_mp3

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

BYTES_PER_SECOND = 2000  # 16 kbit/s
RECOVERY_GRACE = 5.0  # RecorderConfig.recovery_grace (the default the server runs with)
CRASH_CLOSED_WITHIN = 3 * RECOVERY_GRACE  # grace + one recovery period + slack (README)
LOCK_BACK_WITHIN = 5.0  # "within seconds" (README: about 0.25 s plus a connect)
CRASH_LINE = "recording cut off by a crash closed as interrupted"


def sent_until(proc: subprocess.Popen[bytes], until_bytes: int) -> int:
    """Read the pusher's "sent N T" lines until N reaches ``until_bytes``."""
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"open ok"
    while True:
        line = proc.stdout.readline().split()
        assert line and line[0] == b"sent", line
        if int(line[1]) >= until_bytes:
            return int(line[1])


def psql(dsn: str, sql: str) -> str:
    return subprocess.run(
        ["psql", dsn, "-tAc", sql], capture_output=True, text=True, check=True
    ).stdout.strip()


def owner_lock_back(dsn: str, recording_id: str, within: float) -> bool:
    """Whether the session advisory lock named by the recording's ``owner`` is held again in time."""
    owner = int(psql(dsn, f"SELECT owner FROM recordings WHERE id = '{recording_id}'"))
    held = (f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            f" AND classid = {LOCK_NAMESPACE} AND objid = {owner} AND objsubid = 2")  # fmt: skip
    deadline = time.monotonic() + within
    while psql(dsn, held) != "1":
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def crash_lines(srv: RunningServer, recording_id: str) -> list[str]:
    return [line for line in srv.log().splitlines() if CRASH_LINE in line and recording_id in line]


def fleet(srv: RunningServer) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = httpx.get(f"{srv.url}/v1/instances", timeout=10).json()["instances"]
    return rows


def test_a_restart_takes_over_nothing_and_a_killed_instance_is_closed_once(tmp_path: Path) -> None:
    with PrivatePostgres() as pg:
        a, _ = start_shout_server(pg.dsn, tmp_path / "a")
        b, _ = start_shout_server(pg.dsn, tmp_path / "b")
        try:
            b_id = httpx.get(f"{b.url}/v1/instances", timeout=10).json()["self"]
            sent = raw_mp3(tmp_path / "r.mp3", seconds=16.0)
            rec = create_recording(a)
            source = push(ShoutUrl.parse(rec["shout_url"]), tmp_path / "r.mp3", pace=True)
            try:
                sent_until(source, 3 * BYTES_PER_SECOND)
                pg.stop()
                time.sleep(RECOVERY_GRACE + 2)  # every heartbeat is older than the grace now
                pg.start()
                assert owner_lock_back(pg.dsn, rec["id"], within=LOCK_BACK_WITHIN)  # while it streams on
                out = source.communicate(timeout=60)[0]
                assert source.returncode == 0, out
            finally:
                kill(source)
            done = wait_state(a, rec["id"], ("complete", "interrupted"), timeout=60)
            assert (done["state"], done["end_reason"]) == ("complete", "eof")
            assert content(b, rec["id"]) == sent  # every byte, read through the other instance
            assert crash_lines(a, rec["id"]) == crash_lines(b, rec["id"]) == []
            assert [i["state"] for i in fleet(b)] == ["live", "live"]  # nobody declared gone

            second = raw_mp3(tmp_path / "k.mp3", seconds=20.0)
            rec2 = create_recording(a)
            source = push(ShoutUrl.parse(rec2["shout_url"]), tmp_path / "k.mp3", pace=True)
            try:
                sent_until(source, 3 * BYTES_PER_SECOND)
                a.stop(signal.SIGKILL)
                killed_at = time.monotonic()
                closed = wait_state(b, rec2["id"], ("complete", "interrupted"), timeout=CRASH_CLOSED_WITHIN)
                closed_after = time.monotonic() - killed_at
            finally:
                kill(source)
            assert (closed["state"], closed["end_reason"]) == ("interrupted", "crash"), closed_after
            assert closed_after >= RECOVERY_GRACE - 1.5  # the heartbeat's grace was waited out
            time.sleep(RECOVERY_GRACE + 1)  # B's recovery ran again meanwhile: still one close
            assert len(crash_lines(b, rec2["id"])) == 1
            assert [(i["state"], i["ended_by"]) for i in fleet(b) if not i["self"]] == [("gone", b_id)]
            stored = content(b, rec2["id"])
            assert len(stored) >= 2 * BYTES_PER_SECOND and second.startswith(stored)
        finally:
            a.stop()
            b.stop()
