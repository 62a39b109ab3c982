"""What is live right now (playbacks, recordings ingested, audio_stream sessions), for ``GET /v1/activity``
(``GET /v1/streams``) and the metrics.

An entry's ``id`` is the id of the thing itself wherever it has one (an audio_stream session's id,
which ``/v1/streams/{id}`` accepts), so a listed id can always be followed; other entries get a
fresh 32-hex id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from media_mgr.ids import new_id
from media_mgr.isotime import iso_from_epoch


@dataclass
class Activity:
    id: str
    kind: str  # "playback", "recording", "audio_stream"
    media_id: str
    client: str
    detail: dict[str, Any]
    started: float = field(default_factory=time.time)
    bytes: int = 0
    live: Callable[[], dict[str, Any]] | None = None  # figures that change while it runs (audio_stream)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "media_id": self.media_id,
            "client": self.client,
            "started_at": iso_from_epoch(self.started),
            "bytes": self.bytes,
            **self.detail,
            **(self.live() if self.live is not None else {}),
        }


class ActivityRegistry:
    """One entry per live thing; entries are removed when it ends, however it ends."""

    def __init__(self) -> None:
        self._live: dict[str, Activity] = {}

    def start(
        self, kind: str, media_id: str, client: str, *, id: str | None = None,
        live: Callable[[], dict[str, Any]] | None = None, **detail: Any,
    ) -> Activity:  # fmt: skip
        """Register a live thing; ``id`` is its own id when it has one (else a new one is made)."""
        entry = Activity(id or new_id(), kind, media_id, client, detail, live=live)
        self._live[entry.id] = entry
        return entry

    def end(self, entry: Activity) -> None:
        if self._live.get(entry.id) is entry:
            del self._live[entry.id]

    def snapshot(self) -> list[dict[str, Any]]:
        return [a.public() for a in self._live.values()]
