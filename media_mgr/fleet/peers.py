"""Reaching another instance: a control request forwarded to the one that holds a live thing.

Every instance serves the same HTTP app on its own internal port too (``MEDIA_MGR_INTERNAL_PORT``,
registered as ``internal_url``): the shared public port may land on any worker, the internal one
names exactly one. A forwarded request carries ``X-Media-Mgr-Fleet`` (the fleet token: admin
rights between instances) and ``X-Media-Mgr-Forwarded`` (the sender's id): the receiver acts on
what it holds and never forwards again, so a registry row that is out of date costs a 404, not a
loop.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx

from media_mgr.errors import Unavailable
from media_mgr.fleet.instance import Fleet

log = logging.getLogger("media_mgr.fleet")

FLEET_HEADER = "x-media-mgr-fleet"
FORWARDED_HEADER = "x-media-mgr-forwarded"


class PeerUnavailable(Unavailable):
    """The instance that holds it did not answer (it may be ending: the fleet will declare it gone)."""

    code = "peer_unavailable"


@dataclass(frozen=True)
class PeerResponse:
    status: int
    body: Any  # the decoded JSON body


class Peers:
    """``async with Peers(fleet) as peers``: one HTTP client (keep-alive) for every peer."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet
        self._client = httpx.AsyncClient(
            timeout=fleet.config.forward_timeout, headers={FLEET_HEADER: fleet.token}, trust_env=False
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.aclose()

    @property
    def me(self) -> str:
        return self._fleet.id

    async def call(self, instance_id: str, method: str, path: str, *, json: Any = None) -> PeerResponse:
        """``method path`` on ``instance_id``; its JSON answer whatever the status (the caller passes
        errors through as they are). ``PeerUnavailable`` when it is gone or does not answer."""
        async with self._request(instance_id, method, path, json=json) as response:
            await response.aread()
            try:
                body = response.json()
            except ValueError:
                body = {"error": "peer_unavailable", "detail": f"instance {instance_id} sent no JSON"}
            return PeerResponse(response.status_code, body)

    @asynccontextmanager
    async def stream(self, instance_id: str, path: str) -> AsyncIterator[httpx.Response]:
        """A streamed GET (a live mount relayed inside the fleet): read ``response.aiter_raw()``."""
        async with self._request(instance_id, "GET", path) as response:
            yield response

    @asynccontextmanager
    async def _request(
        self, instance_id: str, method: str, path: str, *, json: Any = None
    ) -> AsyncIterator[httpx.Response]:
        row = await self._fleet.live_member(instance_id)
        if row is None:
            raise PeerUnavailable(f"instance {instance_id} is not running")
        request = self._client.build_request(
            method, row.internal_url + path, json=json, headers={FORWARDED_HEADER: self.me}
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            log.info("peer did not answer", extra={"peer": instance_id, "error": repr(exc)})
            raise PeerUnavailable(f"instance {instance_id} did not answer ({type(exc).__name__})") from exc
        try:
            yield response
        finally:
            await response.aclose()
