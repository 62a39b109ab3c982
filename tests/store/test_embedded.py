"""The embedded default: a real PostgreSQL started from nothing, then again from its data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx

from servers import media_mgr_command, start_server
from sounds import tone


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_MGR_")}
    return {**env, "MEDIA_MGR_DATA_DIR": str(data_dir)}


def test_embedded_database_starts_from_nothing_and_again_from_its_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(data)
    env.pop("MEDIA_MGR_DATABASE_URL", None)
    srv = start_server(env, tmp_path / "first.log", timeout=120)
    try:
        assert (data / "pg" / "PG_VERSION").exists()
        assert httpx.get(f"{srv.url}/readyz").json()["checks"]["database"] is True
        with tone(tmp_path / "t.wav").open("rb") as f:
            item = httpx.post(f"{srv.url}/v1/media", files={"file": ("t.wav", f)}, timeout=30).json()
    finally:
        # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught.
        assert srv.stop() in (0, -signal.SIGTERM)
    assert '"service stopped"' in srv.log()
    # The embedded server stops with the last process using it.
    postmaster = data / "pg" / "postmaster.pid"
    assert not postmaster.exists()

    # Second start: same data directory, the item is still there, no migration re-applied.
    srv = start_server(env, tmp_path / "second.log", timeout=120)
    try:
        got = httpx.get(f"{srv.url}/v1/media/{item['id']}")
        assert got.status_code == 200 and got.json()["sha256"] == item["sha256"]
        assert '"migration applied"' not in srv.log()
        # A CLI command shares the running embedded server.
        ls = subprocess.run([*media_mgr_command(), "ls", "--json"], env=env, capture_output=True, text=True)
        assert ls.returncode == 0, ls.stderr
        assert [json.loads(line)["id"] for line in ls.stdout.splitlines()] == [item["id"]]
        assert httpx.get(f"{srv.url}/readyz").json()["ready"] is True  # still up after the CLI left
    finally:
        srv.stop()
