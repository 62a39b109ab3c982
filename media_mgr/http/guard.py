"""Who may call the admin API: a bearer token when one is configured, else loopback clients only."""

from __future__ import annotations

import hmac

from fastapi import Request

from media_mgr.credentials import is_loopback
from media_mgr.errors import Forbidden, Unauthorized
from media_mgr.http.state import state_of


class BearerRequired(Unauthorized):
    """401 that also tells the client which scheme to use."""


async def require_admin(request: Request) -> None:
    token = state_of(request).admin_token
    if token is None:
        client = request.client.host if request.client else None
        if not is_loopback(client):
            raise Forbidden("the admin API answers loopback clients only unless MEDIA_MGR_ADMIN_TOKEN is set")
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise BearerRequired("send Authorization: Bearer <MEDIA_MGR_ADMIN_TOKEN>")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise BearerRequired("the bearer token is not the admin token")
