"""A bare WebSocket server that receives and discards: the anchor of ``audio_stream_load.py``.

``python bench/ws_bare_server.py STACK``: prints ``listening PORT`` once it listens on 127.0.0.1
(any free port) and serves until killed. STACK is one of ``picows``, ``websockets`` (the websockets
asyncio server), ``uvicorn-wsproto``, ``uvicorn-sansio`` (uvicorn's websockets-sansio protocol,
the one media-mgr's HTTP port uses). Every stack echoes an offered subprotocol and runs on uvloop,
as media-mgr does.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from websockets.typing import Subprotocol

import uvloop

STACKS = ("picows", "websockets", "uvicorn-wsproto", "uvicorn-sansio")


def _socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    print(f"listening {sock.getsockname()[1]}", flush=True)
    return sock


async def picows_server(sock: socket.socket) -> None:
    from picows import (
        WSFrame,
        WSListener,
        WSTransport,
        WSUpgradeRequest,
        WSUpgradeResponse,
        WSUpgradeResponseWithListener,
        ws_create_server,
    )

    class Discard(WSListener):
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            frame.get_payload_as_bytes()  # what a real server has to do at least

    def factory(request: WSUpgradeRequest) -> WSUpgradeResponseWithListener:
        offered = request.headers.get("sec-websocket-protocol")
        headers = {"Sec-WebSocket-Protocol": offered.split(",")[0].strip()} if offered else None
        return WSUpgradeResponseWithListener(WSUpgradeResponse.create_101_response(headers), Discard())

    server = await ws_create_server(factory, sock=sock)
    await server.serve_forever()


async def websockets_server(sock: socket.socket) -> None:
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    async def handler(ws: ServerConnection) -> None:
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass

    def echo(ws: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        return offered[0] if offered else None

    async with serve(handler, sock=sock, select_subprotocol=echo, compression=None, ping_interval=None,
                     max_size=256 * 1024) as server:  # fmt: skip
        await server.serve_forever()


async def uvicorn_server(sock: socket.socket, ws: str) -> None:
    import uvicorn

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        offered = scope.get("subprotocols") or []
        await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    config = uvicorn.Config(app, ws=ws, log_level="warning", lifespan="off", ws_per_message_deflate=False,
                            ws_ping_interval=None, loop="none", limit_concurrency=None)  # fmt: skip
    await uvicorn.Server(config).serve(sockets=[sock])


def main() -> None:
    stack = sys.argv[1]
    if stack not in STACKS:
        raise SystemExit(f"stack: one of {', '.join(STACKS)}")
    sock = _socket()
    if stack == "picows":
        uvloop.run(picows_server(sock))
    elif stack == "websockets":
        uvloop.run(websockets_server(sock))
    else:
        impl = "wsproto" if stack == "uvicorn-wsproto" else "websockets-sansio"
        uvloop.run(uvicorn_server(sock, impl))


if __name__ == "__main__":
    main()
