"""Media-Name -> the stored item it names; the only home of Kazoo's lookup rules.

One indexed query per name (reference 2.2): ids directly; ``prompt://`` through the language
fallback (``xx-yy`` -> ``xx`` -> the default language), the account's prompt winning over the
system prompt in the same language; ``tts://`` through the TTS service, which finds or makes the
stored speech, so every path that takes a Media-Name plays TTS like any other item.
"""

from __future__ import annotations

from typing import Protocol

from media_mgr.errors import NotFound
from media_mgr.ids import is_hex32
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


class SpeechSource(Protocol):
    """``tts://`` text (and the request's TTS keys) -> the stored media speaking it (``TtsService``)."""

    async def media_for(self, name_text: str, options: TtsOptions | None = None) -> MediaRow: ...


class Catalog:
    def __init__(self, store: MediaStore, default_language: str, tts: SpeechSource | None = None) -> None:
        self.store = store
        self.default_language = default_language.lower()
        self.tts = tts

    async def resolve_name(self, media_name: str, tts: TtsOptions | None = None) -> MediaItem:
        """Raises ``InvalidMediaName`` for a bad name and ``NotFound`` for a missing item.

        ``tts`` carries a request's ``Text``/``Voice``/``Language``/``Engine`` for a ``tts://`` name.
        """
        return await self.resolve(parse_media_name(media_name), tts)

    async def get(self, media_id: str) -> MediaItem | None:
        """The item with this id, whoever owns it (None if there is none)."""
        row = await self.store.get(media_id)
        return MediaItem.of(row) if row is not None else None

    async def resolve(self, ref: MediaRef, tts: TtsOptions | None = None) -> MediaItem:
        item: MediaRow | None
        match ref:
            case MediaIdRef(account_id=account_id, media_id=media_id):
                item = await self.store.get(media_id) if is_hex32(media_id) else None
                if item is not None and item.account_id != account_id:
                    item = None  # another account's media is not found, not forbidden
            case SystemPromptRef(language=language, prompt_id=prompt_id):
                item = await self.store.find_prompt(None, prompt_id, [language.lower()])
            case PromptRef(account_id=account_id, prompt_id=prompt_id, language=language):
                item = await self.store.find_prompt(
                    account_id, prompt_id, self.languages(language), with_system=True
                )
            case TtsRef(text=text):
                if self.tts is None:
                    raise NotFound("tts:// media is not served here (text to speech is off)")
                item = await self.tts.media_for(text, tts)
        if item is None:
            raise NotFound("no stored media matches that name")
        return MediaItem.of(item)

    def languages(self, language: str | None) -> list[str]:
        """Kazoo's fallback order: the language, its prefix, then the default language."""
        keys = language_keys(language.lower()) if language else []
        for extra in language_keys(self.default_language):
            if extra not in keys:
                keys.append(extra)
        return keys
