"""REST control of live mod_audio_stream sessions: play a stored item into a call, barge in.

``{id}`` is a session id from ``GET /v1/streams``, or the ``stream_id`` or call UUID of exactly one
live session. ``POST /v1/audio-stream-urls`` issues the WebSocket URL a dialplan gives the module,
its token naming the recording the stream will fill. The audio_stream edge sits beside this one
(edges do not import each other), so it is reached through the ``StreamControl`` protocol.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Protocol

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from media_mgr.errors import InvalidRequest, Unavailable
from media_mgr.http.guard import require_admin
from media_mgr.http.state import state_of

router = APIRouter(prefix="/v1", dependencies=[Depends(require_admin)], tags=["audio streams"])

_HEX32 = re.compile(r"[0-9a-f]{32}")


class StreamControl(Protocol):
    def describe(self, ref: str) -> dict[str, Any]: ...

    async def play(
        self, ref: str, *, media_id: str | None, media_name: str | None, checkpoint: str | None
    ) -> dict[str, Any]: ...

    async def clear(self, ref: str) -> dict[str, Any]: ...

    async def issue_url(
        self,
        account_id: str | None,
        name: str | None,
        *,
        rate: int | None = None,
        channels: int | None = None,
    ) -> dict[str, Any]: ...


class PlayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    media_id: str | None = Field(default=None, min_length=32, max_length=32, pattern="^[0-9a-f]{32}$")
    media_name: str | None = Field(default=None, min_length=1, max_length=2048)
    checkpoint: str | None = Field(
        default=None, min_length=1, max_length=200, description="acknowledged by playedStream once heard"
    )

    @model_validator(mode="after")
    def _one_media(self) -> PlayRequest:
        if (self.media_id is None) == (self.media_name is None):
            raise ValueError("give exactly one of media_id and media_name")
        return self


class StreamUrlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str | None = Field(default=None, pattern="^[0-9a-f]{32}$")
    name: str | None = Field(default=None, min_length=1, max_length=255, description="the recording's name")
    rate: int | None = Field(
        default=None, ge=8000, le=48000, multiple_of=8000, description="the stream's rate, put in the URL"
    )
    channels: Literal[1, 2] | None = Field(default=None, description="the stream's channels, put in the URL")


def _control(request: Request) -> StreamControl:
    control = state_of(request).streams
    if control is None:
        raise Unavailable("the audio_stream endpoint is not running")
    return control


@router.get("/streams/{stream}", summary="One live audio stream: format, jitter, lead, underruns, playout")
async def describe_stream(request: Request, stream: str) -> dict[str, Any]:
    return _control(request).describe(stream)


@router.post(
    "/streams/{stream}/play", status_code=202, summary="Queue a stored media item into a live stream"
)
async def play(request: Request, stream: str, body: PlayRequest) -> dict[str, Any]:
    return await _control(request).play(
        stream, media_id=body.media_id, media_name=body.media_name, checkpoint=body.checkpoint
    )


@router.post("/streams/{stream}/clear", summary="Barge-in: drop what is queued and what the module holds")
async def clear(request: Request, stream: str) -> dict[str, Any]:
    return await _control(request).clear(stream)


@router.post("/audio-stream-urls", status_code=201, summary="Issue a mod_audio_stream WebSocket URL")
async def issue_url(request: Request, body: StreamUrlRequest | None = None) -> dict[str, Any]:
    body = body or StreamUrlRequest()
    if body.account_id is not None and not _HEX32.fullmatch(body.account_id):
        raise InvalidRequest("account_id must be 32 lowercase hex characters")
    return await _control(request).issue_url(
        body.account_id, body.name, rate=body.rate, channels=body.channels
    )
