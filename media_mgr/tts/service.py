"""``tts://`` names -> stored media: synthesise once per (engine, voice, language, text), then look up.

Kazoo keeps TTS audio in the memory of the node that made it (reference 2.4.2); here it is an
ordinary media item (WAV at the engine's rate, variants made on demand like any other), found
through ``tts_cache`` by every instance on the database. Concurrent first requests synthesise once:
in-process they share one task, across instances they queue on the key's advisory lock and then
find the entry. Synthesis runs under a time limit, at most ``concurrency`` at once; a caller that
gives up (ecallmgr's 2 s) does not cancel it, so the next request for the text is a lookup.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from media_mgr.audio.info import AudioInfo
from media_mgr.audio.wav import parse_wav_header
from media_mgr.config import Settings
from media_mgr.errors import NotFound, Unavailable
from media_mgr.ids import new_id
from media_mgr.store.media import MediaRow, MediaStore, NewMedia
from media_mgr.store.tts_cache import TtsCacheStore, TtsEntry
from media_mgr.tasks import TaskLimitReached, TaskSet
from media_mgr.tts.engine import TtsEngine, TtsFailed, load_engine
from media_mgr.tts.speech import Speech, SpeechDefaults, TtsOptions, speech_for

log = logging.getLogger("media_mgr.tts")

CHUNK_BYTES = 256 * 1024
SWEEP_BATCH = 500
MAX_PENDING = 256  # distinct texts waiting for or in synthesis per instance; more: Unavailable
NAME_CHARS = 200


@dataclass(frozen=True)
class TtsConfig:
    engines: tuple[str, ...]
    defaults: SpeechDefaults
    cache_seconds: float
    timeout: float
    concurrency: int

    @classmethod
    def from_settings(cls, settings: Settings) -> TtsConfig:
        engines = tuple(name.strip().lower() for name in settings.tts_engines.split(",") if name.strip())
        defaults = SpeechDefaults(
            engine=settings.tts_engine.lower(),
            voice=settings.tts_voice,
            language=settings.tts_language,
            max_text_chars=settings.tts_max_text_chars,
        )
        return cls(
            engines, defaults, settings.tts_cache_seconds, settings.tts_timeout, settings.tts_concurrency
        )


def build_engines(config: TtsConfig, settings: Settings) -> tuple[dict[str, TtsEngine], dict[str, str]]:
    """The configured engines that could be built, and why each of the others could not."""
    engines: dict[str, TtsEngine] = {}
    broken: dict[str, str] = {}
    for name in config.engines:
        try:
            engines[name] = load_engine(name, settings)
        except KeyError:
            broken[name] = "no such engine"
        except (RuntimeError, OSError, ImportError) as exc:  # not installed, no voice data
            broken[name] = str(exc)
        if name in broken:
            log.error("tts engine unavailable", extra={"engine": name, "reason": broken[name]})
    return engines, broken


class TtsService:
    """``async with TtsService(...) as tts``: exit cancels synthesis in flight and closes the engines."""

    def __init__(
        self,
        config: TtsConfig,
        media: MediaStore,
        cache: TtsCacheStore,
        engines: dict[str, TtsEngine],
        broken: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.media = media
        self.cache = cache
        self.engines = engines
        self.broken = dict(broken or {})
        self._limit = asyncio.Semaphore(config.concurrency)
        self._tasks = TaskSet("tts", log, limit=MAX_PENDING)
        self._inflight: dict[str, asyncio.Task[MediaRow]] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Cancel synthesis in flight (engines kill their processes), then close the engines."""
        await self._tasks.stop(self.config.timeout)
        for engine in self.engines.values():
            await engine.aclose()

    @property
    def pending(self) -> int:
        """Distinct texts waiting for or in synthesis (``MAX_PENDING`` at most)."""
        return len(self._tasks)

    def speech(self, name_text: str, options: TtsOptions | None) -> Speech:
        """Check a request against Kazoo's rules and the engine; raises ``InvalidRequest``/``NotFound``."""
        speech = speech_for(name_text, options, self.config.defaults)
        self.engine(speech.engine).check(speech)
        return speech

    def engine(self, name: str) -> TtsEngine:
        engine = self.engines.get(name)
        if engine is not None:
            return engine
        if name in self.broken:
            raise NotFound(f"tts engine {name!r} is configured but unavailable: {self.broken[name]}")
        configured = ", ".join(sorted(self.engines)) or "none"
        raise NotFound(f"tts engine {name!r} is not configured (configured: {configured})")

    async def media_for(self, name_text: str, options: TtsOptions | None = None) -> MediaRow:
        """The stored media speaking this text: cached, or synthesised now (once, whoever asks)."""
        speech = self.speech(name_text, options)
        task = self._inflight.get(speech.key)
        if task is None:
            item = await self._cached(speech.key)
            if item is not None:
                return item
            task = self._inflight.get(speech.key) or self._start(speech)
        return await asyncio.shield(task)

    def _start(self, speech: Speech) -> asyncio.Task[MediaRow]:
        key = speech.key
        try:
            task = self._tasks.spawn(self._produce(speech), name=f"tts.{key[:12]}")
        except TaskLimitReached:
            raise Unavailable(f"{MAX_PENDING} texts are already waiting for speech synthesis") from None
        self._inflight[key] = task
        task.add_done_callback(lambda _: self._inflight.pop(key, None))  # one task per key at a time
        return task

    async def _cached(self, key: str) -> MediaRow | None:
        media_id = await self.cache.touch(key, self.config.cache_seconds)
        row = None if media_id is None else await self.media.get(media_id)
        return None if row is None else row

    async def _produce(self, speech: Speech) -> MediaRow:
        async with self._limit, self.cache.exclusive(speech.key):
            item = await self._cached(speech.key)  # another instance may have made it while we waited
            if item is not None:
                return item
            started = time.monotonic()
            wav = await self._synthesize(speech)
            elapsed = time.monotonic() - started
            item = await self._store(speech, wav)
        log.info(
            "tts synthesised",
            extra={"engine": speech.engine, "voice": speech.voice, "language": speech.language,
                   "chars": len(speech.text), "audio_ms": item.duration_ms,
                   "synthesis_ms": round(elapsed * 1000), "media_id": item.id},
        )  # fmt: skip
        return item

    async def _synthesize(self, speech: Speech) -> bytes:
        engine = self.engine(speech.engine)
        try:
            async with asyncio.timeout(self.config.timeout):
                return await engine.synthesize(speech)
        except TimeoutError:
            raise TtsFailed(f"tts engine {engine.name} took longer than {self.config.timeout:g} s") from None

    async def _store(self, speech: Speech, wav: bytes) -> MediaRow:
        info = _wav_info(wav)
        media_id = new_id()
        entry = TtsEntry(speech.key, speech.engine, speech.voice, speech.language, speech.text)
        replaced = await self.cache.claim(entry, media_id, self.config.cache_seconds)
        if replaced is not None:
            await self.media.delete(replaced)
        name = f"tts {speech.language} {speech.voice}: {speech.text}"[:NAME_CHARS]
        try:
            return await self.media.create(media_id, NewMedia(None, name), info, _chunks(wav))
        except BaseException:
            await asyncio.shield(self.cache.forget(speech.key, media_id))
            raise

    async def sweep(self, limit: int = SWEEP_BATCH) -> int:
        """Delete expired entries and their media; returns how many. For the service's sweeper."""
        swept = 0
        for key in await self.cache.expired_keys(limit):
            async with self.cache.expiring(key) as media_id:
                if media_id is None:
                    continue  # used again since it was listed
                await self.media.delete(media_id)
                swept += 1
        return swept


def _wav_info(wav: bytes) -> AudioInfo:
    header = parse_wav_header(wav)
    data = len(wav) - header.data_offset if header.data_size is None else header.data_size
    return AudioInfo(
        format="wav",
        codec="pcm_s16le",
        sample_rate=header.rate,
        channels=header.channels,
        duration_ms=round(data * 1000 / header.byte_rate),
    )


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK_BYTES):
        yield data[start : start + CHUNK_BYTES]
