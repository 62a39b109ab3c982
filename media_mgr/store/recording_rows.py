"""A recording as its row says, and what the store tells its callers: plain values and exceptions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

RecordingState = Literal["pending", "recording", "complete", "interrupted"]
RecordingFormat = Literal["mp3", "wav"]

COLUMNS = (
    "r.id, r.account_id, r.name, r.format, r.state, r.origin, r.end_reason, r.blob_id, r.size,"
    " r.duration_ms, r.sample_rate, r.channels, r.sha256, r.owner, r.peer, r.created_at, r.started_at,"
    " r.ended_at, m.id IS NOT NULL AS has_media"
)
FROM = "recordings r LEFT JOIN media m ON m.id = r.id"


@dataclass(frozen=True)
class Recording:
    id: str
    account_id: str | None
    name: str
    format: RecordingFormat
    state: RecordingState
    origin: str | None
    end_reason: str | None
    blob_id: int | None
    size: int
    duration_ms: int | None
    sample_rate: int | None
    channels: int | None
    sha256: str | None
    owner: int | None
    peer: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    has_media: bool

    @property
    def content_type(self) -> str:
        return "audio/mpeg" if self.format == "mp3" else "audio/wav"

    @property
    def media_name(self) -> str | None:
        """The Kazoo Media-Name of the media record made from it, once there is one."""
        if not self.has_media:
            return None
        return f"/{self.account_id}/{self.id}" if self.account_id else f"/system_media/{self.id}"

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account_id": self.account_id,
            "name": self.name,
            "format": self.format,
            "content_type": self.content_type,
            "state": self.state,
            "origin": self.origin,
            "end_reason": self.end_reason,
            "size": self.size,
            "duration_ms": self.duration_ms,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "sha256": self.sha256,
            "media_id": self.id if self.has_media else None,
            "media_name": self.media_name,
            "peer": self.peer,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
        }


@dataclass(frozen=True)
class Summary:
    """What a finished recording holds, as written into its row and its media record."""

    size: int
    sha256: str
    duration_ms: int
    sample_rate: int | None
    channels: int | None
    codec: str


@dataclass(frozen=True)
class Audio:
    """What probing found in a whole file handed over at once."""

    duration_ms: int
    sample_rate: int
    channels: int
    codec: str


class DuplicateRecording(Exception):
    """The recording id is already taken."""


class NotPending(Exception):
    """The recording exists but is not waiting for audio (``state`` says what it is)."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


class LostOwnership(Exception):
    """The row no longer names this instance as its writer (it was closed by recovery)."""


def recording_of(row: asyncpg.Record) -> Recording:
    return Recording(**{k: row[k] for k in Recording.__dataclass_fields__})
