"""What is live right now: playbacks, recordings being ingested, mod_audio_stream sessions.

``GET /v1/activity`` is the clear name; ``GET /v1/streams`` (INTERFACE.md) answers the same list
and stays. An entry's ``id`` is the one its own resource takes: an audio_stream session's id is
what ``/v1/streams/{id}`` accepts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends

from media_mgr.http.guard import AdminGuard
from media_mgr.http.openapi import GUARDED, error_responses
from media_mgr.media.activity import ActivityRegistry


def activity_router(
    activity: ActivityRegistry,
    guard: AdminGuard,
    elsewhere: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None,
    me: str | None = None,
) -> APIRouter:
    """``elsewhere``: in a fleet, the audio_stream sessions the other live instances hold, listed
    after this instance's own activity (each entry names its ``instance_id``, ``me`` for ours)."""

    async def everything() -> list[dict[str, Any]]:
        here = activity.snapshot()
        if me is not None:
            here = [{**a, "instance_id": me} if a["kind"] == "audio_stream" else a for a in here]
        return here + (await elsewhere() if elsewhere is not None else [])

    router = APIRouter(prefix="/v1", dependencies=[Depends(guard)], tags=["activity"],
                       responses=error_responses(*GUARDED))  # fmt: skip

    @router.get("/activity", summary="What is being served, ingested or bridged right now")
    async def list_activity() -> dict[str, Any]:
        return {"activity": await everything()}

    @router.get("/streams", summary="The same list under its documented name (key: streams)")
    async def list_streams() -> dict[str, Any]:
        return {"streams": await everything()}

    return router
