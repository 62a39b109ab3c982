"""``GET /v1/instances``: the fleet as the registry sees it (who runs, who answered this, who is gone)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from media_mgr.fleet.instance import Fleet
from media_mgr.http.guard import AdminGuard
from media_mgr.http.openapi import GUARDED, error_responses


def instances_router(fleet: Fleet, guard: AdminGuard) -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(guard)], tags=["fleet"],
                       responses=error_responses(*GUARDED, 503))  # fmt: skip

    @router.get("/instances", summary="Every live instance of the fleet, and those ended in the last hour")
    async def list_instances() -> dict[str, Any]:
        return {"instances": await fleet.members(), "self": fleet.id}

    return router
