"""``GET /internal/mounts/{name}``: one of our live mounts, streamed to another instance of the fleet.

Another instance whose listener (or relay) wants a mount whose source is here opens one such
stream and mirrors it to its own listeners (shout/fleet_mounts.py). The body is what a SHOUT
listener gets (burst on connect, then whole MP3 frames in real time, close when the source ends);
the mount's ice-* info rides in ``X-Media-Mgr-Mount-Info`` (JSON). Only the fleet token opens it;
it is not part of the public API, so it is left out of the OpenAPI document.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from media_mgr.credentials import same_secret
from media_mgr.errors import Forbidden, NotFound
from media_mgr.fleet.peers import FLEET_HEADER
from media_mgr.live.feed import MountFeed
from media_mgr.live.registry import MountRegistry

MOUNT_INFO_HEADER = "x-media-mgr-mount-info"


def internal_mounts_router(registry: MountRegistry, fleet_token: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/internal/mounts/{name:path}")
    async def mount_stream(name: str, request: Request) -> StreamingResponse:
        shown = request.headers.get(FLEET_HEADER)
        if shown is None or not same_secret(shown, fleet_token):
            raise Forbidden("only another instance of the fleet reads a mount here")
        mount = registry.get("/" + name)
        if mount is None or not mount.live:
            raise NotFound(f"no source on mount /{name} here")
        feed = MountFeed(mount)

        async def body() -> AsyncIterator[bytes]:
            try:
                async for piece in feed:
                    yield piece
            finally:
                feed.close()

        headers = {MOUNT_INFO_HEADER: json.dumps(mount.info), "cache-control": "no-cache, no-store"}
        return StreamingResponse(body(), media_type=mount.content_type, headers=headers,
                                 background=BackgroundTask(feed.close))  # fmt: skip

    return router
