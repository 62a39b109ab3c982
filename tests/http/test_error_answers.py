"""Errors are answered from the one table in ``media_mgr.errors``: status, headers and JSON body."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from media_mgr.app import Service
from media_mgr.config import Settings

from sounds import tone


async def test_a_missing_dependency_is_503_with_retry_after(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ffprobe not installed: the upload cannot be probed now, which is no fault of the client's."""
    audio = tone(tmp_path / "a.wav", seconds=0.2)
    settings = Settings(database_url=database_url, data_dir=tmp_path / "data", http_port=0, shout_port=0)
    async with Service(settings).open() as app:
        monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
        transport = httpx.ASGITransport(app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://media-mgr") as client:
            r = await client.post("/v1/media", content=audio.read_bytes())
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.json() == {"error": "unavailable", "detail": "ffprobe is not installed (install ffmpeg)"}
