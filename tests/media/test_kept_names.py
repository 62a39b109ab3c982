"""Media-Names answered from memory without an await (the media_req hot path): the same answers as the
database path, None whenever memory cannot tell, and the cache's hit/miss counts as if asked once."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from live_playback import live_playback

from media_mgr.config import Settings
from media_mgr.errors import NotFound
from media_mgr.media.models import NewMedia
from media_mgr.media.names import InvalidMediaName
from media_mgr.media.staging import read_file, stage

from sounds import tone


async def test_a_known_name_resolves_from_memory_as_the_database_path_would(
    database_url: str, server: object, tmp_path: Path
) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    account, other = secrets.token_hex(16), secrets.token_hex(16)
    async with live_playback(settings) as (playback, library):
        cache = playback.catalog.cache
        wav = tone(tmp_path / "p.wav", seconds=1)
        staged = await stage(read_file(wav), tmp_path, 1 << 20)
        item = await library.add(NewMedia(account, "kept", prompt_id="kept-prompt", language="en-us"), staged)
        by_id = f"/{account}/{item.id}"
        prompt = f"prompt://{account}/kept-prompt/en-us"

        for name in (by_id, prompt):
            misses, hits = cache.misses, cache.hits
            assert playback.stream_url_kept(name, "new", None, None) is None  # not read yet
            url = await playback.stream_url(name, "new", None, None)
            assert (cache.misses, cache.hits) == (misses + 1, hits)  # one miss, not two
            kept = playback.stream_url_kept(name, "extant", "shout", None)
            assert kept is not None and cache.hits == hits + 1
            assert kept.startswith("shout://") and "/continuous/" in kept and kept.endswith(".mp3")
            assert url.split("/")[-1] == playback.stream_url_kept(name, "new", None, None).split("/")[-1]  # type: ignore[union-attr]

        # Another account's id is not found from memory either; a bad name raises as it always did.
        with pytest.raises(NotFound):
            await playback.stream_url(f"/{other}/{item.id}", "new", None, None)
        with pytest.raises(NotFound):
            playback.stream_url_kept(f"/{other}/{item.id}", "new", None, None)
        with pytest.raises(InvalidMediaName):
            playback.stream_url_kept("bogus://x", "new", None, None)
        assert playback.stream_url_kept("tts://hello there", "new", None, None) is None  # TTS decides

        # A change drops what memory knew: the next answer comes from the database again.
        await library.delete(item.id)
        async with asyncio.timeout(10):
            while playback.stream_url_kept(by_id, "new", None, None) is not None:
                await asyncio.sleep(0.01)
        with pytest.raises(NotFound):
            await playback.stream_url(by_id, "new", None, None)
        with pytest.raises(NotFound):
            playback.stream_url_kept(by_id, "new", None, None)  # now known absent
