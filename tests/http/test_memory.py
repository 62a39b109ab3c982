"""Uploading and downloading a large file does not hold it in the server's memory."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servers import RunningServer, peak_rss_kib, rss_kib, start_server

SIZE_MB = 100


@pytest.fixture(scope="module")
def big_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("big")
    srv = start_server(
        {"MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(data)}, data / "log"
    )
    yield srv
    srv.stop()


def test_large_upload_and_download_stay_in_bounded_memory(big_server: RunningServer, tmp_path: Path) -> None:
    big = tmp_path / "big.wav"
    seconds = SIZE_MB * 1024 * 1024 // (48000 * 2 * 2)
    subprocess.run(["sox", "-n", "-r", "48000", "-c", "2", "-b", "16", str(big), "synth", str(seconds),
                    "whitenoise", "gain", "-10"], check=True)  # fmt: skip
    size = big.stat().st_size
    assert size > (SIZE_MB - 1) * 1024 * 1024
    pid = big_server.proc.pid
    httpx.get(f"{big_server.url}/healthz")
    before = rss_kib(pid)

    def body() -> Iterator[bytes]:
        with big.open("rb") as f:
            while piece := f.read(1 << 20):
                yield piece

    r = httpx.post(f"{big_server.url}/v1/media", content=body(), timeout=300)
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["size"] == size
    digest = hashlib.sha256()
    received = 0
    with httpx.stream("GET", f"{big_server.url}/v1/media/{item['id']}/content", timeout=300) as resp:
        for piece in resp.iter_bytes():
            digest.update(piece)
            received += len(piece)
    assert received == size
    assert digest.hexdigest() == hashlib.sha256(big.read_bytes()).hexdigest() == item["sha256"]
    # The same file through a per-request stream URL, as mod_http_cache fetches it, read slowly.
    issued = httpx.post(f"{big_server.url}/v1/stream-urls", json={"media_name": item["media_name"]})
    url = issued.json()["stream_url"]
    received = 0
    with httpx.stream("GET", url, timeout=300) as resp:
        assert resp.headers["content-length"] == str(size)
        for n, piece in enumerate(resp.iter_bytes()):
            received += len(piece)
            if n % 200 == 0:
                time.sleep(0.01)
    assert received == size
    growth_mb = (peak_rss_kib(pid) - before) / 1024
    # A server that held the file would grow by at least its size; chunks are 256 kB.
    assert growth_mb < SIZE_MB / 2, f"peak resident memory grew {growth_mb:.0f} MB for a {SIZE_MB} MB file"
