"""A recording as its row says, and what the store tells its callers: plain values and exceptions.

What a recording means (its Media-Name, content type, JSON) is the domain's ``recording.models``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from media_mgr.store.rows import Row

RecordingState = Literal["pending", "recording", "complete", "interrupted"]
RecordingFormat = Literal["mp3", "wav"]

COLUMNS = (
    "r.id, r.account_id, r.name, r.format, r.state, r.origin, r.end_reason, r.blob_id, r.size,"
    " r.duration_ms, r.sample_rate, r.channels, r.sha256, r.owner, r.peer, r.created_at, r.started_at,"
    " r.ended_at, m.id IS NOT NULL AS has_media"
)
FROM = "recordings r LEFT JOIN media m ON m.id = r.id"


@dataclass(frozen=True, eq=False)
class RecordingRow(Row):
    """One ``recordings`` row (and whether a media record was made from it)."""

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


def recording_of(row: asyncpg.Record) -> RecordingRow:
    return RecordingRow(**{k: row[k] for k in RecordingRow.__dataclass_fields__})
