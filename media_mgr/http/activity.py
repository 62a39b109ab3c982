"""What is live right now: playbacks, recordings being ingested, mod_audio_stream sessions.

``GET /v1/activity`` is the clear name; ``GET /v1/streams`` (INTERFACE.md) answers the same list
and stays. An entry's ``id`` is the one its own resource takes: an audio_stream session's id is
what ``/v1/streams/{id}`` accepts.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from media_mgr.http.guard import AdminGuard
from media_mgr.http.openapi import GUARDED, error_responses
from media_mgr.media.activity import ActivityRegistry


def activity_router(activity: ActivityRegistry, guard: AdminGuard) -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(guard)], tags=["activity"],
                       responses=error_responses(*GUARDED))  # fmt: skip

    @router.get("/activity", summary="What is being served, ingested or bridged right now")
    async def list_activity() -> dict[str, Any]:
        return {"activity": activity.snapshot()}

    @router.get("/streams", summary="The same list under its documented name (key: streams)")
    async def list_streams() -> dict[str, Any]:
        return {"streams": activity.snapshot()}

    return router
