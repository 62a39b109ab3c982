"""Errors are answered from the one table in ``media_mgr.errors``: status, headers and JSON body."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from media_mgr.app import Service
from media_mgr.audio import transcode
from media_mgr.config import Settings

from sounds import tone


async def test_a_missing_dependency_is_503_with_retry_after(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ffmpeg to transcode with: the MP3 cannot be made now, which is no fault of the client's."""
    audio = tone(tmp_path / "a.wav", seconds=0.2)
    settings = Settings(database_url=database_url, data_dir=tmp_path / "data", http_port=0, shout_port=0)
    async with Service(settings).open() as app:
        transport = httpx.ASGITransport(app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://media-mgr") as client:
            item = (await client.post("/v1/media", content=audio.read_bytes())).json()
            issued = await client.post(
                "/v1/stream-urls", json={"media_name": item["media_name"], "format": "mp3"}
            )
            path = httpx.URL(issued.json()["stream_url"]).raw_path.decode()
            monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-such-ffmpeg"))
            monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
            transcode.ffmpeg_exe.cache_clear()
            try:
                r = await client.get(path)
            finally:
                transcode.ffmpeg_exe.cache_clear()
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.json()["error"] == "unavailable"
    assert "ffmpeg" in r.json()["detail"]
