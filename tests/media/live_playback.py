"""Playback as the service builds it, with its cache live: the store, the LISTEN/NOTIFY listener that
keeps the cache honest, and the library that changes items (``server`` applied the migrations)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from media_mgr.builders import open_library, open_listener, open_playback, open_store
from media_mgr.config import Settings
from media_mgr.media.library import MediaLibrary
from media_mgr.media.playback import Playback


@contextlib.asynccontextmanager
async def live_playback(settings: Settings) -> AsyncIterator[tuple[Playback, MediaLibrary]]:
    async with (
        open_store(settings, apply_migrations=False) as store,
        open_listener(settings, store) as listener,
    ):
        playback = await open_playback(
            settings, store, http_port=1, secret=b"s" * 32, tts=None, listener=listener
        )
        async with asyncio.timeout(10):  # the listener is connected: nothing it would drop is kept before
            while not playback.catalog.cache.live:
                await asyncio.sleep(0.01)
        yield playback, open_library(settings, store)
