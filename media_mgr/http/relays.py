"""REST for relays to an external Icecast: /v1/relays.

A relay pushes one of our live mounts, or a stored item played in a loop (music on hold), to an
Icecast mount. The SHOUT side runs them (``shout/relay.py``, stored and owned across the fleet by
``shout/fleet_relays.py``); edges do not import each other, so it is reached through the
``RelayControl`` protocol. A request another instance forwarded (``X-Media-Mgr-Forwarded``) acts on
this instance's own relays only (``local``): it is never forwarded again.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from media_mgr.errors import InvalidRequest
from media_mgr.fleet.peers import FORWARDED_HEADER
from media_mgr.http.guard import AdminGuard
from media_mgr.http.openapi import GUARDED, JSON_NUMBER, error_responses
from media_mgr.ids import HEX32_PATTERN


class RelayControl(Protocol):
    """What the SHOUT side offers for relays."""

    async def add(
        self, *, mount: str | None, media_id: str | None, host: str, port: int, target_mount: str, user: str,
        password: str, local: bool = False,
    ) -> dict[str, Any]: ...  # fmt: skip

    async def list(self, *, local: bool = False) -> list[dict[str, Any]]: ...

    async def get(self, relay_id: str, *, local: bool = False) -> dict[str, Any]: ...

    async def remove(self, relay_id: str, *, local: bool = False) -> None: ...


def _forwarded(request: Request) -> bool:
    return FORWARDED_HEADER in request.headers


class RelayTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=255)
    port: Annotated[int, JSON_NUMBER] = Field(default=8000, ge=1, le=65535)
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
    async def add_relay(body: RelayBody, request: Request) -> dict[str, Any]:
        if (body.mount is None) == (body.media_id is None):
            raise InvalidRequest("give exactly one of mount (live) or media_id (looped)")
        t = body.target
        return await relays.add(mount=body.mount, media_id=body.media_id, host=t.host, port=t.port,
                                target_mount=t.mount, user=t.user, password=t.password,
                                local=_forwarded(request))  # fmt: skip

    @router.get("/relays", summary="List relays (of every instance) and their state")
    async def list_relays(request: Request) -> dict[str, Any]:
        return {"items": await relays.list(local=_forwarded(request))}

    @router.get("/relays/{relay_id}", summary="One relay", responses=error_responses(404))
    async def get_relay(relay_id: str, request: Request) -> dict[str, Any]:
        return await relays.get(relay_id, local=_forwarded(request))

    @router.delete(
        "/relays/{relay_id}", status_code=204, summary="Stop a relay", responses=error_responses(404)
    )
    async def delete_relay(relay_id: str, request: Request) -> Response:
        await relays.remove(relay_id, local=_forwarded(request))
        return Response(status_code=204)

    return router
