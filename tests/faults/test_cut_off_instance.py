"""An instance cut off from the database (alive, not restarted) longer than the grace, then back.

A reaches PostgreSQL through a link this test can cut (tcp_cut.py); B directly. A python-shout
source records on A. The link is cut: PostgreSQL ends A's sessions (its owner lock is free), A's
beat stops, and after the grace B declares A gone and closes the recording as ``interrupted`` /
``crash``, once. When the link comes back, A must not revive the row (before the fix, its next
append set the state back to ``recording`` and its finalize made an extra revision that sent every
issued URL to 410): the row stays as B closed it, A says it had been declared gone, registers
again, and is live in the fleet.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from shout_peers import ShoutUrl, create_recording, kill, push, recording, start_shout_server, wait_state
from tcp_cut import CuttableLink

from servers import RunningServer
from sounds import raw_mp3

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

GRACE = 2.0
BYTES_PER_SECOND = 2000  # raw_mp3's 16 kbit/s


def instances(srv: RunningServer) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{srv.url}/v1/instances", timeout=10).json()
    return body


def state_of(srv: RunningServer, instance_id: str) -> str | None:
    rows = [i for i in instances(srv)["instances"] if i["id"] == instance_id]
    return rows[0]["state"] if rows else None


def wait_until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def sent_at_least(proc: subprocess.Popen[bytes], count: int) -> None:
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"open ok"
    while True:
        line = proc.stdout.readline().split()
        assert line and line[0] == b"sent", line
        if int(line[1]) >= count:
            return


def test_a_cut_off_instance_is_declared_gone_once_and_cannot_revive_its_recording(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    dsn = new_database()
    with CuttableLink("127.0.0.1", 5432) as link:
        via_link = dsn.replace("127.0.0.1:5432", f"127.0.0.1:{link.port}")
        assert via_link != dsn
        grace = {"MEDIA_MGR_FLEET_GRACE_SECONDS": str(GRACE), "MEDIA_MGR_TIMEOUT_DB_CONNECT": "1",
                 "MEDIA_MGR_TIMEOUT_SHOUT_SOURCE": "30"}  # fmt: skip
        a, _ = start_shout_server(via_link, tmp_path / "a", **grace)
        b, _ = start_shout_server(dsn, tmp_path / "b", **grace)
        source = None
        try:
            a_id, b_id = instances(a)["self"], instances(b)["self"]
            raw_mp3(tmp_path / "r.mp3", seconds=30.0)
            rec = create_recording(a)
            source = push(ShoutUrl.parse(rec["shout_url"]), tmp_path / "r.mp3", pace=True)
            sent_at_least(source, 3 * BYTES_PER_SECOND)

            link.cut()
            wait_until(lambda: state_of(b, a_id) == "gone", timeout=6 * GRACE + 10)
            closed = wait_state(b, rec["id"], ("complete", "interrupted"), timeout=10)
            assert (closed["state"], closed["end_reason"]) == ("interrupted", "crash")
            assert [i["ended_by"] for i in instances(b)["instances"] if i["id"] == a_id] == [b_id]

            link.restore()
            wait_until(lambda: "had been declared gone" in a.log(), timeout=30)
            wait_until(lambda: state_of(b, a_id) == "live", timeout=10)  # registered again
            time.sleep(3)  # A's ingest had audio buffered: it tried to write it by now
            after = recording(b, rec["id"])
            assert (after["state"], after["end_reason"], after["size"]) == (
                "interrupted", "crash", closed["size"])  # fmt: skip
            media = httpx.get(f"{b.url}/v1/media/{rec['id']}", timeout=10)
            assert media.status_code == 200, media.text
            assert "recording cut off by a crash" not in a.log()  # only B closed it
            crash_lines = [line for line in b.log().splitlines() if "cut off by a crash" in line]
            assert len(crash_lines) == 1
        finally:
            if source is not None:
                kill(source)
            a.stop()
            b.stop()
