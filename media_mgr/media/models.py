"""What a media item is: plain frozen values shared by the store, the domain and the edges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from media_mgr.audio.info import CONTENT_TYPES, AudioFormat, AudioInfo
from media_mgr.media.names import media_name_for

__all__ = ["CONTENT_TYPES", "AudioFormat", "AudioInfo", "BlobInfo", "MediaFilter", "MediaItem", "NewMedia"]


@dataclass(frozen=True)
class BlobInfo:
    id: int
    size: int
    sha256: str


@dataclass(frozen=True)
class NewMedia:
    """The caller-chosen part of a media record (the rest comes from the content)."""

    account_id: str | None
    name: str
    prompt_id: str | None = None
    language: str | None = None
    media_id: str | None = None


@dataclass(frozen=True)
class MediaItem:
    id: str
    account_id: str | None
    prompt_id: str | None
    language: str | None
    name: str
    content_type: str
    codec: str
    size: int
    duration_ms: int
    sample_rate: int
    channels: int
    sha256: str
    revision: int
    blob_id: int
    created_at: datetime
    updated_at: datetime

    @property
    def media_name(self) -> str:
        """The Kazoo Media-Name that resolves to this item (reference 2.2)."""
        return media_name_for(self.account_id, self.id, self.prompt_id, self.language)

    @property
    def format(self) -> AudioFormat:
        return "mp3" if self.content_type == CONTENT_TYPES["mp3"] else "wav"

    def public(self) -> dict[str, Any]:
        """The record as the REST API and the CLI show it."""
        return {
            "id": self.id,
            "account_id": self.account_id,
            "prompt_id": self.prompt_id,
            "language": self.language,
            "name": self.name,
            "media_name": self.media_name,
            "content_type": self.content_type,
            "format": self.format,
            "codec": self.codec,
            "size": self.size,
            "duration_ms": self.duration_ms,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "sha256": self.sha256,
            "revision": self.revision,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class MediaFilter:
    account_id: str | None = None
    system: bool | None = None
    prompt_id: str | None = None
    language: str | None = None
    name: str | None = None
    limit: int = 100
    offset: int = 0
