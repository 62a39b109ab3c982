"""What is being served right now, for ``GET /v1/streams`` and the metrics."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Activity:
    id: int
    kind: str  # "playback" (later: "recording", "audio_stream")
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
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "bytes": self.bytes,
            **self.detail,
            **(self.live() if self.live is not None else {}),
        }


class ActivityRegistry:
    """One entry per live stream; entries are removed when their stream ends, however it ends."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._live: dict[int, Activity] = {}

    def start(
        self, kind: str, media_id: str, client: str, *, live: Callable[[], dict[str, Any]] | None = None,
        **detail: Any,
    ) -> Activity:  # fmt: skip
        entry = Activity(next(self._ids), kind, media_id, client, detail, live=live)
        self._live[entry.id] = entry
        return entry

    def end(self, entry: Activity) -> None:
        self._live.pop(entry.id, None)

    def snapshot(self) -> list[dict[str, Any]]:
        return [a.public() for a in self._live.values()]
