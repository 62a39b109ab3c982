"""What a connection needs of the server carrying its WebSocket, and who may open one.

``Socket`` is implemented by the route on the HTTP port (``endpoint.py``, Starlette's WebSocket)
and by the audio_stream listener on its own port (``listener.py``, picows). ``admission`` is the
check before the upgrade, the same on both: a refused URL, the session limit, an event loop too
far behind, credentials (``?token=``, Basic or Bearer), and the subprotocol echoed when offered.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from media_mgr.audio_stream import auth, dialects
from media_mgr.audio_stream.service import AudioStreamService
from media_mgr.errors import Forbidden, Unauthorized


class ConnState(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"


class SocketGone(ConnectionError):
    """A send on a socket that is closed or closing."""


class Socket(Protocol):
    """What a connection needs of its server's WebSocket; ``receive`` returns ASGI-shaped messages
    (``websocket.receive`` with ``text`` or ``bytes``, ``websocket.disconnect`` with ``code``)."""

    path: str
    query: str
    subprotocols: list[str]
    headers: Mapping[str, str]
    client: tuple[str, int] | None

    async def accept(self, subprotocol: str | None) -> None: ...

    async def deny(self, status: int, body: bytes, headers: dict[str, str]) -> None: ...

    async def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None after ``timeout`` seconds (a tick: no exception, no cancel)."""

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass(frozen=True)
class Denial:
    """An upgrade answered with HTTP instead of 101 (how a voipbit module is made to give up)."""

    outcome: str
    status: int
    detail: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def body(self) -> bytes:
        code = {401: "unauthorized", 403: "forbidden", 503: "unavailable"}[self.status]
        return json.dumps({"error": code, "detail": self.detail}).encode()


def admission(
    service: AudioStreamService, ws: Socket, url: str, query: Mapping[str, str]
) -> Denial | tuple[auth.Grant, str | None]:
    """The grant and the subprotocol to echo, or why the upgrade is refused (an HTTP answer, which
    is how a voipbit module is made to give up, reference A1.8)."""
    config = service.config
    now = service.clock()
    client = ws.client[0] if ws.client else None
    if service.registry.refused(url, now):
        return Denial("refused", 403, "this stream was closed for bad input; try again later")
    if len(service.registry) >= config.limit_sessions:
        return Denial("limit", 503, f"{config.limit_sessions} audio streams are live")
    if service.overloaded():
        return Denial("overloaded", 503, "the server is behind on the streams it has")
    token = auth.presented_token(ws.headers, query)
    try:
        grant = auth.authorize(token, client, config.admin_token, service.secret, time.time())
    except Unauthorized as exc:
        return Denial("unauthorized", 401, exc.detail, {"www-authenticate": 'Basic realm="media-mgr"'})
    except Forbidden as exc:
        return Denial("forbidden", 403, exc.detail)
    offered = ws.subprotocols
    ours = [p for p in dialects.SUBPROTOCOLS if p in offered]
    # Echo what was offered (the module's name can be changed by an environment variable, A1.3).
    return grant, ours[0] if ours else (offered[0] if offered else None)
