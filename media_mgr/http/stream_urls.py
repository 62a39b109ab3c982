"""Per-request playback URLs over REST: ``POST /v1/stream-urls`` (the twin of an AMQP media_req), revoke.

A "stream URL" here is always a playback URL (``/single/...``, ``/continuous/...``, ``shout://``);
live things are listed by ``http/activity.py`` and mod_audio_stream sessions controlled by
``http/audio_streams.py``.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from media_mgr.errors import NotFound
from media_mgr.http.guard import AdminGuard
from media_mgr.http.openapi import GUARDED, JSON_NUMBER, OPTIONAL_RATE_SCHEMA, error_responses
from media_mgr.media.playback import Playback
from media_mgr.tts.speech import TtsOptions


class StreamUrlRequest(BaseModel):
    """The REST twin of an AMQP media_req."""

    model_config = ConfigDict(extra="forbid")

    media_name: str = Field(
        min_length=1, max_length=2048, examples=["/3a63acb1cc1fbd5fb5fa6b3d39b48b7e/0123..."]
    )
    stream_type: Literal["new", "extant"] = "new"
    protocol: Literal["http", "https", "shout", "vlc"] | None = None
    format: Literal["wav", "mp3"] | None = None
    rate: Annotated[int | None, JSON_NUMBER] = Field(
        default=None,
        description="resample to this rate",
        json_schema_extra=OPTIONAL_RATE_SCHEMA,
    )
    # A media_req's TTS keys, for a tts:// media_name (Text, Voice, Language, Engine).
    text: str | None = Field(default=None, max_length=10000, description="tts: the words (else the name's)")
    voice: str | None = Field(default=None, max_length=32, description="tts: male or female")
    language: str | None = Field(default=None, max_length=32, description="tts: e.g. en-us, fr")
    engine: str | None = Field(default=None, max_length=64, description="tts: engine name")


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stream_url: str = Field(min_length=1, max_length=4096)


def stream_urls_router(playback: Playback, guard: AdminGuard) -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(guard)], tags=["media"],
                       responses=error_responses(*GUARDED, 400, 503))  # fmt: skip

    @router.post("/stream-urls", summary="Issue a stream URL for a Media-Name, as a media_req would",
                 responses=error_responses(404))  # fmt: skip
    async def issue_stream_url(body: StreamUrlRequest) -> dict[str, str]:
        url = await playback.stream_url(
            body.media_name, body.stream_type, body.protocol, body.format, body.rate,
            tts=TtsOptions(body.text, body.voice, body.language, body.engine),
        )  # fmt: skip
        return {"stream_url": url}

    @router.post("/stream-urls/revoke", status_code=204, summary="Refuse an issued stream URL from now on",
                 responses=error_responses(404))  # fmt: skip
    async def revoke_stream_url(body: RevokeRequest) -> Response:
        parts = urlsplit(body.stream_url).path.strip("/").split("/")
        if len(parts) != 3 or parts[0] not in ("single", "continuous"):
            raise NotFound("not a stream URL of this service: expected /single|continuous/<token>/<name>")
        await playback.revoke(parts[1])
        return Response(status_code=204)

    return router
