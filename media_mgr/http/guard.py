"""Who may call the admin API: a bearer token when one is configured, else loopback clients only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from media_mgr.credentials import bearer_token, is_loopback, same_secret
from media_mgr.errors import Forbidden, Unauthorized
from media_mgr.fleet.peers import FLEET_HEADER

AdminGuard = Callable[[Request], Awaitable[None]]
"""A FastAPI dependency that raises unless the request may use ``/v1/*``."""

_BEARER = {"www-authenticate": "Bearer"}


def admin_guard(admin_token: str | None, fleet_token: str | None = None) -> AdminGuard:
    """The ``/v1/*`` check for one configured token (None: loopback clients only). Another
    instance forwarding a request shows ``fleet_token`` instead (fleet/peers.py)."""

    async def require_admin(request: Request) -> None:
        shown = request.headers.get(FLEET_HEADER)
        if fleet_token is not None and shown is not None and same_secret(shown, fleet_token):
            return
        if admin_token is None:
            client = request.client.host if request.client else None
            if not is_loopback(client):
                raise Forbidden(
                    "the admin API answers loopback clients only unless MEDIA_MGR_ADMIN_TOKEN is set"
                )
            return
        given = bearer_token(request.headers.get("authorization", ""))
        if given is None:
            raise Unauthorized("send Authorization: Bearer <MEDIA_MGR_ADMIN_TOKEN>", headers=_BEARER)
        if not same_secret(given, admin_token):
            raise Unauthorized("the bearer token is not the admin token", headers=_BEARER)

    return require_admin
