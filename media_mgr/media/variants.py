"""The content a stream URL asks for: the stored bytes, or a transcoded variant made once.

A variant (another format or rate of one revision) is transcoded by ffmpeg the first time it is
asked for and kept in the database, so later requests, on any instance, are served from there.
Concurrent first requests wait for the one transcode: in-process on an asyncio lock per key,
across instances on a PostgreSQL advisory lock.

An MP3 variant is transcoded whole before it is stored and served: its first frame is an Info tag
whose encoder delay and padding are known only at the end, and gapless decoders (mod_shout's
libmpg123) need it to play exactly the source's length. Stored uploads are served as they came.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from media_mgr.audio.info import AudioFormat
from media_mgr.audio.transcode import transcoded
from media_mgr.media.models import MediaItem
from media_mgr.store.blobs import BlobStore
from media_mgr.store.variants import Variant, VariantKey, VariantStore

log = logging.getLogger("media_mgr.media")


@dataclass(frozen=True)
class Content:
    """Bytes ready to serve: which blob, how long, what it is."""

    blob_id: int
    size: int
    format: AudioFormat
    rate: int
    etag: str


class VariantCache:
    def __init__(
        self, variants: VariantStore, blobs: BlobStore, scratch_dir: Path, transcode_limit: asyncio.Semaphore
    ) -> None:
        self.variants = variants
        self.blobs = blobs
        self.scratch_dir = scratch_dir
        self.limit = transcode_limit
        self._locks: dict[VariantKey, asyncio.Lock] = {}
        self.transcodes = 0  # how many this process ran (tests and metrics read it)

    async def content(self, item: MediaItem, fmt: AudioFormat, rate: int | None) -> Content:
        if fmt == item.format and (rate is None or rate == item.sample_rate):
            return Content(item.blob_id, item.size, item.format, item.sample_rate, _etag(item, fmt, None))
        key = VariantKey(item.id, item.revision, fmt, rate or 0)
        found = await self.variants.get(key)
        if found is None:
            lock = self._locks.setdefault(key, asyncio.Lock())
            try:
                async with lock:
                    found = await self._make(item, key)
            finally:
                if not lock.locked() and self._locks.get(key) is lock:
                    del self._locks[key]
        return Content(found.blob_id, found.size, fmt, rate or item.sample_rate, _etag(item, fmt, rate))

    async def _make(self, item: MediaItem, key: VariantKey) -> Variant:
        async with self.variants.making(key) as writer:
            if writer.existing is not None:
                return writer.existing
            fmt: AudioFormat = "mp3" if key.format == "mp3" else "wav"
            async with transcoded(
                self.blobs.read(item.blob_id),
                item.format,
                fmt,
                key.rate or None,
                1,
                scratch_dir=self.scratch_dir,
                limit=self.limit,
            ) as result:
                self.transcodes += 1
                variant = await writer.write(result.chunks())
        log.info(
            "variant transcoded",
            extra={"media_id": item.id, "revision": item.revision, "format": fmt, "rate": key.rate or None,
                   "bytes": variant.size},
        )  # fmt: skip
        return variant

    def read(self, content: Content, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return self.blobs.read(content.blob_id, start, end)


def _etag(item: MediaItem, fmt: AudioFormat, rate: int | None) -> str:
    return f'"{item.id}-{item.revision}-{fmt}-{rate or item.sample_rate}"'
