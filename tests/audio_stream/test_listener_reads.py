"""The listener's connections read at most ``READ_AT_MOST`` at once: picows doubles a connection's read
buffer whenever one read fills it and never shrinks it, so a backlog read in one go (the process was
descheduled, a thousand sockets' frames queued in the kernel) left every connection holding a buffer
the size of its backlog. A real picows client sends a backlog to the listener's own protocol."""

from __future__ import annotations

import asyncio
import logging

import pytest
from picows import (
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_connect,
)
from picows.picows import WSProtocol  # type: ignore[attr-defined]

from media_mgr.audio_stream.listener import READ_AT_MOST, peer_protocol

pytestmark = pytest.mark.timeout(60)

FRAMES = 600
MEDIA = b'{\n\t"event":\t"media",\n\t"media":\t{"payload":\t"' + b"A" * 400 + b'"}\n}'


class Received(WSListener):
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            self.frames.append(frame.get_payload_as_bytes())


async def test_a_backlog_is_read_in_small_reads_whole_and_in_order() -> None:
    loop = asyncio.get_running_loop()
    received = Received()
    offered: list[int] = []
    protocols: list[WSProtocol] = []

    def upgrade(request: WSUpgradeRequest, peer: object) -> WSUpgradeResponseWithListener:
        return WSUpgradeResponseWithListener(WSUpgradeResponse.create_101_response(), received)

    def factory() -> WSProtocol:
        proto = peer_protocol(upgrade, 1 << 20, logging.LoggerAdapter(logging.getLogger("test"), {}))
        capped = proto.get_buffer

        def watched(size_hint: int) -> memoryview:
            view: memoryview = capped(size_hint)
            offered.append(len(view))
            return view

        proto.get_buffer = watched  # what the transport is offered to read into
        protocols.append(proto)
        return proto

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client, _ = await ws_connect(WSListener, f"ws://127.0.0.1:{port}/audio_stream")
    try:
        for i in range(FRAMES):  # all queued before the server's loop turn: one backlog
            client.send(WSMsgType.TEXT, MEDIA + str(i).encode())
        async with asyncio.timeout(30):
            while len(received.frames) < FRAMES:
                await asyncio.sleep(0.01)
    finally:
        client.disconnect()
        server.close()
    assert received.frames == [MEDIA + str(i).encode() for i in range(FRAMES)]
    assert max(offered) <= READ_AT_MOST
    # picows' own buffer: what it would offer uncapped once the backlog is read
    (proto,) = protocols
    assert len(WSProtocol.get_buffer(proto, -1)) <= 4 * READ_AT_MOST
