"""What the HTTP edge needs from the rest of the service, handed over once at start-up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Request

from media_mgr.media.activity import ActivityRegistry
from media_mgr.media.library import MediaLibrary
from media_mgr.media.playback import Playback
from media_mgr.media.variants import VariantCache
from media_mgr.metrics import Metrics

if TYPE_CHECKING:
    from media_mgr.http.recordings import RecordingsEdge
    from media_mgr.http.streams import StreamControl

Readiness = Callable[[], Awaitable[dict[str, bool]]]


@dataclass
class HttpState:
    library: MediaLibrary
    playback: Playback
    variants: VariantCache
    activity: ActivityRegistry
    metrics: Metrics
    readiness: Readiness
    admin_token: str | None
    scratch_dir: Path
    limit_upload_bytes: int
    limit_list_page: int
    recordings: RecordingsEdge | None = None  # /v1/recordings, /v1/relays, /store/
    streams: StreamControl | None = None  # /v1/streams/{id}/play|clear, /v1/audio-stream-urls


def state_of(request: Request) -> HttpState:
    state: HttpState = request.app.state.http
    return state
