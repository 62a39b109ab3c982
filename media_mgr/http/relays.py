"""REST for relays to an external Icecast: /v1/relays.

A relay pushes one of our live mounts, or a stored item played in a loop (music on hold), to an
Icecast mount. The SHOUT side runs them (``shout/relay.py``); edges do not import each other, so it
is reached through the ``RelayControl`` protocol.
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from media_mgr.errors import InvalidRequest
from media_mgr.http.guard import AdminGuard
from media_mgr.http.openapi import GUARDED, error_responses
from media_mgr.ids import HEX32_PATTERN


class RelayControl(Protocol):
    """What the SHOUT side offers for relays."""

    async def add(
        self, *, mount: str | None, media_id: str | None, host: str, port: int, target_mount: str, user: str,
        password: str,
    ) -> dict[str, Any]: ...  # fmt: skip

    def list(self) -> list[dict[str, Any]]: ...

    def get(self, relay_id: str) -> dict[str, Any]: ...

    async def remove(self, relay_id: str) -> None: ...


class RelayTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=8000, ge=1, le=65535)
    mount: str = Field(min_length=2, max_length=255, pattern=r"^/")
    user: str = Field(default="source", max_length=255)
    password: str = Field(min_length=1, max_length=255)


class RelayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mount: str | None = Field(default=None, description="a live mount of ours to relay", pattern=r"^/")
    media_id: str | None = Field(
        default=None, pattern=HEX32_PATTERN, description="or a stored item, played in a loop (MOH)"
    )
    target: RelayTarget


def relays_router(relays: RelayControl, guard: AdminGuard) -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(guard)], tags=["relays"],
                       responses=error_responses(*GUARDED, 503))  # fmt: skip

    @router.post(
        "/relays",
        status_code=201,
        summary="Relay a live mount or a looped item to an Icecast mount",
        responses=error_responses(400, 404, 409),
    )
    async def add_relay(body: RelayBody) -> dict[str, Any]:
        if (body.mount is None) == (body.media_id is None):
            raise InvalidRequest("give exactly one of mount (live) or media_id (looped)")
        t = body.target
        return await relays.add(mount=body.mount, media_id=body.media_id, host=t.host, port=t.port,
                                target_mount=t.mount, user=t.user, password=t.password)  # fmt: skip

    @router.get("/relays", summary="List relays and their state")
    async def list_relays() -> dict[str, Any]:
        return {"items": relays.list()}

    @router.get("/relays/{relay_id}", summary="One relay", responses=error_responses(404))
    async def get_relay(relay_id: str) -> dict[str, Any]:
        return relays.get(relay_id)

    @router.delete(
        "/relays/{relay_id}", status_code=204, summary="Stop a relay", responses=error_responses(404)
    )
    async def delete_relay(relay_id: str) -> Response:
        await relays.remove(relay_id)
        return Response(status_code=204)

    return router
