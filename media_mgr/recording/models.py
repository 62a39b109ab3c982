"""What a recording is to the rest of the service: its row plus what it means.

The store hands back plain ``RecordingRow`` values; the recorder turns each into a ``Recording``,
which adds what only the domain knows: its content type, the Media-Name of the media record made
from it, its JSON for the REST API and the CLI, and its ``recording.*`` event body.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Self

from media_mgr.audio.info import CONTENT_TYPES
from media_mgr.isotime import iso
from media_mgr.store.recording_rows import RecordingRow


@dataclass(frozen=True, eq=False)  # equal to its row (store.rows.Row)
class Recording(RecordingRow):
    @classmethod
    def of(cls, row: RecordingRow) -> Self:
        return cls(**{f.name: getattr(row, f.name) for f in dataclasses.fields(RecordingRow)})

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def media_name(self) -> str | None:
        """The Kazoo Media-Name of the media record made from it, once there is one."""
        if not self.has_media:
            return None
        return f"/{self.account_id}/{self.id}" if self.account_id else f"/system_media/{self.id}"

    def public(self) -> dict[str, Any]:
        """The recording as the REST API and the CLI show it."""
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
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
        }

    def event_body(self) -> dict[str, Any]:
        """``recording.complete`` / ``recording.interrupted``, in the Kazoo envelope style."""
        return {
            "Event-Category": "recording",
            "Event-Name": self.state,
            "Recording-ID": self.id,
            "Account-ID": self.account_id,
            "Name": self.name,
            "Media-ID": self.id if self.has_media else None,
            "Media-Name": self.media_name,
            "Content-Type": self.content_type,
            "Duration-MS": self.duration_ms,
            "Size": self.size,
            "SHA256": self.sha256,
            "End-Reason": self.end_reason,
            "Origin": self.origin,
        }
