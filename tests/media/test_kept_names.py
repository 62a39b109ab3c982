"""Media-Names answered from memory without an await (the media_req hot path): the same answers as the
database path, None whenever memory cannot tell, and the cache's hit/miss counts as if asked once."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

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


class HeldReads:
    """The real store, its name look-ups counted and held until released (to see them overlap)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.reads = 0
        self.release = asyncio.Event()

    async def find_prompt(self, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        await self.release.wait()
        return await self.store.find_prompt(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def reads_reach(held: HeldReads, count: int) -> None:
    async with asyncio.timeout(10):
        while held.reads < count:
            await asyncio.sleep(0.005)


async def test_a_burst_for_an_unknown_name_waits_for_one_read_and_none_from_before_a_change(
    database_url: str, server: object, tmp_path: Path
) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    account = secrets.token_hex(16)
    async with live_playback(settings) as (playback, library):
        staged = await stage(read_file(tone(tmp_path / "p.wav", seconds=1)), tmp_path, 1 << 20)
        item = await library.add(NewMedia(account, "burst", prompt_id="burst", language="en-us"), staged)
        held = HeldReads(playback.catalog.store)
        playback.catalog.store = held  # type: ignore[assignment]
        name = f"prompt://{account}/burst/en-us"

        burst = [asyncio.create_task(playback.stream_url(name, "new", None, None)) for _ in range(50)]
        await reads_reach(held, 1)
        await asyncio.sleep(0.05)  # every request of the burst is waiting by now
        assert held.reads == 1
        held.release.set()
        urls = await asyncio.gather(*burst)
        assert len({url.split("/")[-1] for url in urls}) == 1 and held.reads == 1

        # A change lands while a read is under way: a request after it does not join that read.
        held.release.clear()
        staged = await stage(read_file(tone(tmp_path / "q.wav", seconds=2)), tmp_path, 1 << 20)
        replaced = await library.replace(item.id, staged)
        async with asyncio.timeout(10):  # the notification dropped what memory knew of the name
            while playback.stream_url_kept(name, "new", None, None) is not None:
                await asyncio.sleep(0.01)
        before = asyncio.create_task(playback.stream_url(name, "new", None, None))
        await reads_reach(held, 2)
        playback.catalog.cache.changed(item.id)  # as the next notification does
        after = asyncio.create_task(playback.stream_url(name, "new", None, None))
        await reads_reach(held, 3)
        held.release.set()
        await asyncio.gather(before, after)
        assert held.reads == 3 and replaced.revision > item.revision
