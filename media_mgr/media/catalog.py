"""Media-Name -> the stored item it names; the only home of Kazoo's lookup rules.

One indexed query per name (reference 2.2): ids directly; ``prompt://`` through the language
fallback (``xx-yy`` -> ``xx`` -> the default language), the account's prompt winning over the
system prompt in the same language; ``tts://`` through the TTS service, which finds or makes the
stored speech, so every path that takes a Media-Name plays TTS like any other item.

With a :class:`~media_mgr.media.cache.MediaCache` (the service's, kept current by notifications),
records and ``prompt://`` resolutions are answered from memory once read: a stream URL or a
media_req for a known item asks the database nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Protocol

from media_mgr.errors import NotFound
from media_mgr.ids import is_hex32
from media_mgr.media.cache import MISS, NAMES, MediaCache
from media_mgr.media.models import MediaItem
from media_mgr.media.names import (
    MediaIdRef,
    MediaRef,
    PromptRef,
    SystemPromptRef,
    TtsRef,
    language_keys,
    parse_media_name,
)
from media_mgr.store.media import MediaRow, MediaStore
from media_mgr.tts.speech import TtsOptions

PARSED_NAMES = 4096
"""Media-Names kept parsed (a name's meaning never changes; only what it resolves to, kept elsewhere)."""


def _record_key(media_id: str) -> tuple[str, str]:
    return ("record", media_id)


def _prompt_key(
    account_id: str | None, prompt_id: str, languages: list[str], with_system: bool
) -> tuple[str, str | None, str, tuple[str, ...], bool]:
    """One key for the database path (``_prompt``) and the memory-only one (``_kept``)."""
    return ("prompt", account_id, prompt_id, tuple(languages), with_system)


class SpeechSource(Protocol):
    """``tts://`` text (and the request's TTS keys) -> the stored media speaking it (``TtsService``)."""

    async def media_for(self, name_text: str, options: TtsOptions | None = None) -> MediaRow: ...


class Catalog:
    def __init__(
        self,
        store: MediaStore,
        default_language: str,
        tts: SpeechSource | None = None,
        cache: MediaCache | None = None,
    ) -> None:
        self.store = store
        self.default_language = default_language.lower()
        self.tts = tts
        self._names: dict[str, MediaRef] = {}  # parsed Media-Names: the same few arrive again and again
        self._reading: dict[tuple[Hashable, int], asyncio.Future[MediaItem | None]] = {}  # reads under way
        self.cache = (
            cache if cache is not None else MediaCache(0, 0)
        )  # never live: every lookup reads the database

    async def resolve_name(self, media_name: str, tts: TtsOptions | None = None) -> MediaItem:
        """Raises ``InvalidMediaName`` for a bad name and ``NotFound`` for a missing item.

        ``tts`` carries a request's ``Text``/``Voice``/``Language``/``Engine`` for a ``tts://`` name.
        """
        return await self.resolve(parse_media_name(media_name), tts)

    def resolve_name_kept(self, media_name: str) -> MediaItem | None:
        """:meth:`resolve_name` answered from memory alone, or None when that needs the database (or
        TTS): no await, so a media_req for a known name is answered without a timer or a task switch.
        Raises as :meth:`resolve_name` does; counts a cache hit or miss once, as it would."""
        ref = self._names.get(media_name)
        if ref is None:
            ref = parse_media_name(media_name)
            if len(self._names) >= PARSED_NAMES:
                self._names.clear()
            self._names[media_name] = ref
        kept = self._kept(ref)
        if kept is MISS:
            if self.cache.live and not isinstance(ref, TtsRef):
                self.cache.misses -= 1  # the database path that follows looks again and counts it
            return None
        return self._found(kept)

    async def get(self, media_id: str) -> MediaItem | None:
        """The item with this id, whoever owns it (None if there is none)."""
        return await self.record(media_id)

    async def record(self, media_id: str, *, seen: int = 0) -> MediaItem | None:
        """The item with this id, from memory when it is there. ``seen``: a revision the caller knows
        existed (a URL's), so a kept copy older than it, or a kept absence, is read again: the
        notification that would have dropped it is still on its way."""
        key = _record_key(media_id)
        kept = self.cache.get(key)
        if kept is not MISS and (kept.revision >= seen if kept is not None else seen == 0):
            return kept  # type: ignore[no-any-return]
        if seen:  # a read of its own: one shared with an earlier caller may predate that revision
            return await self._read_now(self.cache.begin(), key, media_id, lambda: self.store.get(media_id))
        return await self._read(key, media_id, lambda: self.store.get(media_id))

    async def _prompt(
        self, account_id: str | None, prompt_id: str, languages: list[str], with_system: bool
    ) -> MediaRow | None:
        key = _prompt_key(account_id, prompt_id, languages, with_system)
        kept = self.cache.get(key)
        if kept is not MISS:
            return kept  # type: ignore[no-any-return]
        return await self._read(
            key,
            NAMES,
            lambda: self.store.find_prompt(account_id, prompt_id, languages, with_system=with_system),
        )

    async def _read(
        self, key: Hashable, tag: str, read: Callable[[], Awaitable[MediaRow | None]]
    ) -> MediaItem | None:
        """One database read for every concurrent miss of ``key`` in the same cache generation: a burst
        of media_req for a name not yet known (a fresh instance at 2000 a second) waits for one query,
        not for dozens queued for the pool. A change since a read began makes a new one, so nothing
        read before a change reaches a caller that came after it. Without a live cache, each reads."""
        began = self.cache.begin()
        if not self.cache.live:
            return await self._read_now(began, key, tag, read)
        flight = (key, began)
        shared = self._reading.get(flight)
        if shared is None:
            shared = asyncio.ensure_future(self._read_now(began, key, tag, read))
            self._reading[flight] = shared
            shared.add_done_callback(lambda done: self._landed(flight, done))
        return await asyncio.shield(shared)

    async def _read_now(
        self, began: int, key: Hashable, tag: str, read: Callable[[], Awaitable[MediaRow | None]]
    ) -> MediaItem | None:
        row = await read()
        item = MediaItem.of(row) if row is not None else None
        self.cache.put(began, key, item, tag)
        return item

    def _landed(self, flight: tuple[Hashable, int], done: asyncio.Future[MediaItem | None]) -> None:
        self._reading.pop(flight, None)
        if not done.cancelled():
            done.exception()  # retrieved here too: every caller may have gone (timed out) meanwhile

    async def resolve(self, ref: MediaRef, tts: TtsOptions | None = None) -> MediaItem:
        item: MediaRow | None
        match ref:
            case MediaIdRef(account_id=account_id, media_id=media_id):
                item = await self.record(media_id) if is_hex32(media_id) else None
                if item is not None and item.account_id != account_id:
                    item = None  # another account's media is not found, not forbidden
            case SystemPromptRef(language=language, prompt_id=prompt_id):
                item = await self._prompt(None, prompt_id, [language.lower()], False)
            case PromptRef(account_id=account_id, prompt_id=prompt_id, language=language):
                item = await self._prompt(account_id, prompt_id, self.languages(language), True)
            case TtsRef(text=text):
                if self.tts is None:
                    raise NotFound("tts:// media is not served here (text to speech is off)")
                item = await self.tts.media_for(text, tts)
        return self._found(item)

    def _kept(self, ref: MediaRef) -> object:
        """What :meth:`resolve` would find in memory for ``ref`` (None: known to be absent), or MISS.
        The same keys and rules as :meth:`record` and :meth:`_prompt`, one cache look-up."""
        match ref:
            case MediaIdRef(account_id=account_id, media_id=media_id):
                if not is_hex32(media_id):
                    return None
                kept = self.cache.get(_record_key(media_id))
                if kept is None or kept is MISS:
                    return kept
                return kept if kept.account_id == account_id else None
            case SystemPromptRef(language=language, prompt_id=prompt_id):
                return self.cache.get(_prompt_key(None, prompt_id, [language.lower()], False))
            case PromptRef(account_id=account_id, prompt_id=prompt_id, language=language):
                return self.cache.get(_prompt_key(account_id, prompt_id, self.languages(language), True))
        return MISS  # tts://: the TTS service decides

    @staticmethod
    def _found(item: object) -> MediaItem:
        if item is None:
            raise NotFound("no stored media matches that name")
        if isinstance(item, MediaItem):
            return item
        return MediaItem.of(item)  # type: ignore[arg-type]

    def languages(self, language: str | None) -> list[str]:
        """Kazoo's fallback order: the language, its prefix, then the default language."""
        keys = language_keys(language.lower()) if language else []
        for extra in language_keys(self.default_language):
            if extra not in keys:
                keys.append(extra)
        return keys
