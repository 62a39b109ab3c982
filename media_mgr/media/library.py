"""The media library: add, describe, replace, list and delete items.

The one place where upload rules live, shared by the REST API and the CLI: names and ids are
checked here, content is probed here, store errors become domain errors here.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from media_mgr.audio.info import AudioInfo
from media_mgr.audio.probe import probe
from media_mgr.audio.wav import fix_open_ended_sizes
from media_mgr.errors import Conflict, InvalidRequest, NotFound
from media_mgr.ids import is_hex32
from media_mgr.media.models import MediaFilter, MediaItem, NewMedia
from media_mgr.media.staging import StagedFile, read_file
from media_mgr.store.media import DuplicateId, DuplicatePrompt, MediaStore

PROMPT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
"""A prompt id (Kazoo's prompt file names); also the pattern the HTTP edge declares."""
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$"
"""A language tag such as en-us or fr (compared in lower case)."""
PROMPT_ID = re.compile(PROMPT_ID_PATTERN)
LANGUAGE = re.compile(LANGUAGE_PATTERN.replace("A-Za-z", "a-z"))
MAX_NAME = 255


def new_media_id() -> str:
    return secrets.token_hex(16)


def check_account_id(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    lowered = value.strip().lower()
    if not is_hex32(lowered):
        raise InvalidRequest(f"account_id {value!r} is not 32 hexadecimal characters")
    return lowered


def check_media_id(value: str) -> str:
    lowered = value.strip().lower()
    if not is_hex32(lowered):
        raise NotFound(f"no media {value!r}: media ids are 32 hexadecimal characters")
    return lowered


def check_language(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    lowered = value.strip().lower()
    if not LANGUAGE.match(lowered):
        raise InvalidRequest(f"language {value!r} is not a language tag such as en-us or fr")
    return lowered


class MediaLibrary:
    def __init__(
        self, store: MediaStore, scratch_dir: Path, *, probe_timeout: float, default_language: str
    ) -> None:
        self.store = store
        self.scratch_dir = scratch_dir
        self.probe_timeout = probe_timeout
        self.default_language = default_language

    def describe(
        self,
        *,
        account_id: str | None,
        name: str | None,
        prompt_id: str | None = None,
        language: str | None = None,
        media_id: str | None = None,
        filename: str | None = None,
    ) -> NewMedia:
        """Validate what a caller says about a new item; raises InvalidRequest (400)."""
        account = check_account_id(account_id)
        lang = check_language(language)
        prompt = prompt_id.strip() if prompt_id else None
        if prompt is not None and not PROMPT_ID.match(prompt):
            raise InvalidRequest(f"prompt_id {prompt_id!r} may hold letters, digits, '_', '-' and '.' only")
        if prompt is not None and lang is None:
            lang = self.default_language
        if media_id:
            media_id = media_id.strip().lower()
            if not is_hex32(media_id):
                raise InvalidRequest(f"id {media_id!r} is not 32 hexadecimal characters")
        display = (name or "").strip() or (Path(filename).name if filename else "") or prompt or ""
        if len(display) > MAX_NAME or any(ord(c) < 32 for c in display):
            raise InvalidRequest(f"name must be at most {MAX_NAME} printable characters")
        return NewMedia(
            account_id=account, name=display, prompt_id=prompt, language=lang, media_id=media_id or None
        )

    async def add(self, meta: NewMedia, staged: StagedFile) -> MediaItem:
        """Probe the staged file and store it; the scratch file is removed either way."""
        try:
            info = await self._probe(staged)
            media_id = meta.media_id or new_media_id()
            if not meta.name:
                meta = NewMedia(meta.account_id, media_id, meta.prompt_id, meta.language, media_id)
            try:
                return MediaItem.of(await self.store.create(media_id, meta, info, read_file(staged.path)))
            except DuplicatePrompt:
                owner = meta.account_id or "system media"
                raise Conflict(
                    f"{owner} already has prompt {meta.prompt_id!r} in language {meta.language!r}"
                ) from None
            except DuplicateId:
                raise Conflict(f"id {media_id} already names media or a recording") from None
        finally:
            staged.discard()

    async def replace(self, media_id: str, staged: StagedFile) -> MediaItem:
        try:
            media_id = check_media_id(media_id)
            info = await self._probe(staged)
            item = await self.store.replace_content(media_id, info, read_file(staged.path))
        finally:
            staged.discard()
        if item is None:
            raise NotFound(f"no media {media_id}")
        return MediaItem.of(item)

    async def _probe(self, staged: StagedFile) -> AudioInfo:
        # A WAV written by a streaming tool declares no sizes; sox would play it as silence.
        await asyncio.to_thread(fix_open_ended_sizes, staged.path)
        return await probe(staged.path, self.probe_timeout)

    async def get(self, media_id: str) -> MediaItem:
        item = await self.store.get(check_media_id(media_id))
        if item is None:
            raise NotFound(f"no media {media_id}")
        return MediaItem.of(item)

    async def list(self, f: MediaFilter) -> tuple[list[MediaItem], int]:
        rows, total = await self.store.list(f)
        return [MediaItem.of(r) for r in rows], total

    async def delete(self, media_id: str) -> None:
        if not await self.store.delete(check_media_id(media_id)):
            raise NotFound(f"no media {media_id}")

    def content(self, item: MediaItem, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return self.store.blobs.read(item.blob_id, start, end)
