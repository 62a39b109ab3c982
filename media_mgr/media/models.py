"""What a media item is to the domain and the edges: the store's row plus what it means.

The store hands back plain ``MediaRow`` values; the library and the catalog turn each into a
``MediaItem``, which adds what only the domain knows: its Kazoo Media-Name, its format and its
JSON. The plain values the store takes (``NewMedia``, ``MediaFilter``, ``BlobInfo``) are defined
with the store and named here too, so callers find every media value in one place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Self

from media_mgr.audio.info import CONTENT_TYPES, AudioFormat, AudioInfo
from media_mgr.isotime import iso
from media_mgr.media.names import media_name_for
from media_mgr.store.blobs import BlobInfo
from media_mgr.store.media import MediaFilter, MediaRow, NewMedia

__all__ = ["CONTENT_TYPES", "AudioFormat", "AudioInfo", "BlobInfo", "MediaFilter", "MediaItem", "NewMedia"]


@dataclass(frozen=True, eq=False)  # equal to its row (store.rows.Row)
class MediaItem(MediaRow):
    @classmethod
    def of(cls, row: MediaRow) -> Self:
        return cls(**{f.name: getattr(row, f.name) for f in dataclasses.fields(MediaRow)})

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
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }
