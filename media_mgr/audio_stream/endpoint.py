"""``ws://host:24517/audio_stream`` (and any path below) on the HTTP port: Starlette's WebSocket as a
``transport.Socket`` for ``connection.Connection``.

The same streams can come to the audio_stream listener on its own port (``listener.py``), which
costs a fraction of the CPU per frame; this route stays for modules already pointed at the HTTP port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.responses import Response
from starlette.websockets import WebSocketDisconnect

from media_mgr.audio_stream.connection import Connection
from media_mgr.audio_stream.transport import SocketGone

router = APIRouter()


@router.websocket("/audio_stream")
async def audio_stream(websocket: WebSocket) -> None:
    await Connection(websocket.app.state.audio_stream, StarletteSocket(websocket)).run()


@router.websocket("/audio_stream/{below:path}")
async def audio_stream_below(websocket: WebSocket, below: str) -> None:
    await Connection(websocket.app.state.audio_stream, StarletteSocket(websocket)).run()


class StarletteSocket:
    """Starlette's WebSocket as a ``transport.Socket``."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.path: str = ws.scope["path"]
        self.query: str = ws.scope.get("query_string", b"").decode("latin-1")
        self.subprotocols: list[str] = list(ws.scope.get("subprotocols") or [])
        self.headers: Mapping[str, str] = ws.headers
        self.client: tuple[str, int] | None = (ws.client.host, ws.client.port) if ws.client else None

    async def accept(self, subprotocol: str | None) -> None:
        await self.ws.accept(subprotocol=subprotocol)

    async def deny(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        response = Response(body, status_code=status, headers=headers, media_type="application/json")
        await self.ws.send_denial_response(response)

    async def receive(self, timeout: float) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(timeout):
                return dict(await self.ws.receive())
        except TimeoutError:
            return None

    async def send_text(self, text: str) -> None:
        try:
            await self.ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise SocketGone(str(exc)) from exc

    async def close(self, code: int, reason: str) -> None:
        try:
            await self.ws.close(code, reason)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise SocketGone(str(exc)) from exc
