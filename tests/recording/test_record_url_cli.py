"""``media-mgr record-url``: a recording created from the command line, its URL taken by a server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from servers import RunningServer
from sounds import mp3


def test_record_url_issues_a_shout_url_any_instance_accepts(server: RunningServer, database_url: str,
                                                            tmp_path: Path, account_id: str) -> None:  # fmt: skip
    env = {**os.environ, "MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "media_mgr.cli", "--shout-port", "8123", "--http-port", "24999",
                           "record-url", "--account-id", account_id, "--json"],
                          env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rec = json.loads(done.stdout)
    assert rec["state"] == "pending" and rec["account_id"] == account_id
    assert rec["shout_url"].startswith(f"shout://{rec['id']}:")
    assert rec["shout_url"].endswith(f":8123/{rec['id']}.mp3")
    assert ":24999/store/" in rec["store_url"]
    # The running server shares the database and so the signing secret: the CLI's URL works there.
    audio = mp3(tmp_path / "cli.mp3", seconds=1.0)
    store_url = rec["store_url"].replace(":24999", f":{server.port}")
    put = subprocess.run(["curl", "-sS", "-T", str(audio), "-H", "Content-Type: audio/mpeg", store_url],
                         capture_output=True, timeout=60)  # fmt: skip
    assert json.loads(put.stdout)["ok"] is True
    assert httpx.get(f"{server.url}/v1/recordings/{rec['id']}").json()["state"] == "complete"
    plain = subprocess.run([sys.executable, "-m", "media_mgr.cli", "--shout-port", "8123", "record-url"],
                           env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert plain.returncode == 0 and plain.stdout.startswith("shout://")
