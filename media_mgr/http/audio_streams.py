"""REST control of live mod_audio_stream sessions: describe, play a stored item into a call, barge in.

``{session}`` is a session id (the ``id`` ``GET /v1/streams`` lists for an audio_stream entry), or
the ``stream_id`` or call UUID of exactly one live session. ``POST /v1/audio-stream-urls`` issues
the WebSocket URL a dialplan gives the module, its token naming the recording the stream will fill.
The audio_stream edge sits beside this one (edges do not import each other), so it is reached
through the ``AudioStreamControl`` protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from media_mgr.credentials import same_secret
from media_mgr.errors import NotFound, Unauthorized
from media_mgr.fleet.peers import FLEET_HEADER, FORWARDED_HEADER
from media_mgr.http.guard import AdminGuard
from media_mgr.http.openapi import GUARDED, JSON_NUMBER, NAME_PATTERN, error_responses
from media_mgr.ids import HEX32_PATTERN


class AudioStreamControl(Protocol):
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


class StreamOwners(Protocol):
    """The fleet: which other instance holds a session, and a request forwarded to it."""

    async def owner_of(self, ref: str) -> str | None: ...

    async def forward(
        self, instance_id: str, method: str, path: str, body: Any = None
    ) -> tuple[int, Any]: ...


class Handover(Protocol):
    async def give(self, ask: dict[str, Any]) -> dict[str, Any]: ...


class PlayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    media_id: str | None = Field(default=None, pattern=HEX32_PATTERN)
    media_name: str | None = Field(default=None, min_length=1, max_length=2048)
    checkpoint: str | None = Field(
        default=None, min_length=1, max_length=200, description="acknowledged by playedStream once heard"
    )

    @model_validator(mode="after")
    def _one_media(self) -> PlayRequest:
        if (self.media_id is None) == (self.media_name is None):
            raise ValueError("give exactly one of media_id and media_name")
        return self


class HandoverRequest(BaseModel):
    """What an instance a module reconnected to asks the one holding the session (handover.py)."""

    model_config = ConfigDict(extra="forbid")

    session_id: str = Field(pattern=HEX32_PATTERN)
    key: str = Field(max_length=20000)
    metadata: str | None = Field(default=None, max_length=1_000_000)
    takeover: bool = False
    instance_id: str = Field(pattern=HEX32_PATTERN)
    owner: int


class AudioStreamUrlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str | None = Field(default=None, pattern=HEX32_PATTERN)
    name: str | None = Field(
        default=None, min_length=1, max_length=255, pattern=NAME_PATTERN, description="the recording's name"
    )
    rate: Annotated[int | None, JSON_NUMBER] = Field(
        default=None, ge=8000, le=48000, multiple_of=8000, description="the stream's rate, put in the URL"
    )
    # Not Literal[1, 2]: a Literal compares by equality, so it took ``true``.
    channels: Annotated[int | None, JSON_NUMBER] = Field(
        default=None, ge=1, le=2, description="the stream's channels, put in the URL"
    )


def audio_streams_router(
    control: AudioStreamControl, guard: AdminGuard, owners: StreamOwners | None = None
) -> APIRouter:
    """``owners``: in a fleet, a session held by another instance is acted on there (the request is
    forwarded once; a forwarded request that finds nothing here answers 404)."""
    router = APIRouter(prefix="/v1", dependencies=[Depends(guard)], tags=["audio streams"],
                       responses=error_responses(*GUARDED, 503))  # fmt: skip

    async def here_or_owner(
        request: Request, ref: str, body: Any, local: Callable[[], Awaitable[dict[str, Any]]]
    ) -> Any:
        try:
            return await local()
        except NotFound:
            if owners is None or FORWARDED_HEADER in request.headers:
                raise
            owner = await owners.owner_of(ref)
            if owner is None:
                raise
        tail = request.url.path.rsplit("/", 1)[-1]
        path = f"/v1/streams/{quote(ref, safe='')}" + ("" if request.method == "GET" else f"/{tail}")
        status, answer = await owners.forward(owner, request.method, path, body)
        return JSONResponse(answer, status_code=status)

    @router.get(
        "/streams/{session}",
        summary="One live audio stream: format, jitter, lead, underruns, playout",
        response_model=dict[str, Any],  # or the answer of the instance holding it, as it is
        responses=error_responses(404, 409),
    )
    async def describe(session: str, request: Request) -> Any:
        async def local() -> dict[str, Any]:
            return control.describe(session)

        return await here_or_owner(request, session, None, local)

    @router.post(
        "/streams/{session}/play",
        status_code=202,
        summary="Queue a stored media item into a live stream",
        response_model=dict[str, Any],
        responses=error_responses(400, 404, 409),
    )
    async def play(session: str, body: PlayRequest, request: Request) -> Any:
        async def local() -> dict[str, Any]:
            return await control.play(
                session, media_id=body.media_id, media_name=body.media_name, checkpoint=body.checkpoint
            )

        return await here_or_owner(request, session, body.model_dump(exclude_none=True), local)

    @router.post(
        "/streams/{session}/clear",
        summary="Barge-in: drop what is queued and what the module holds",
        response_model=dict[str, Any],
        responses=error_responses(404, 409),
    )
    async def clear(session: str, request: Request) -> Any:
        return await here_or_owner(request, session, None, lambda: control.clear(session))

    @router.post("/audio-stream-urls", status_code=201, summary="Issue a mod_audio_stream WebSocket URL",
                 responses=error_responses(400))  # fmt: skip
    async def issue_url(body: AudioStreamUrlRequest | None = None) -> dict[str, Any]:
        body = body or AudioStreamUrlRequest()
        return await control.issue_url(body.account_id, body.name, rate=body.rate, channels=body.channels)

    return router


def audio_stream_handover_router(handover: Handover, fleet_token: str) -> APIRouter:
    """``POST /internal/audio-stream/handover``: another instance, which a module reconnected to,
    takes a session over (``audio_stream/handover.py``). The fleet token only: no admin, no
    loopback exemption, not in the public API."""
    router = APIRouter(include_in_schema=False)

    async def require_fleet(request: Request) -> None:
        shown = request.headers.get(FLEET_HEADER)
        if shown is None or not same_secret(shown, fleet_token):
            raise Unauthorized("instances of the fleet only")

    @router.post("/internal/audio-stream/handover", dependencies=[Depends(require_fleet)])
    async def hand_over(ask: HandoverRequest) -> dict[str, Any]:
        return await handover.give(ask.model_dump())

    return router
