"""uvicorn's sans-I/O WebSocket protocol, with a client's own failures logged as the client's.

uvicorn's ``websockets-sansio`` implementation is the cheapest WebSocket stack it offers (the
audio_stream endpoint's frames are most of its work), but it logs two client failures at ERROR:
a text frame that is not UTF-8 (with a traceback, before closing 1007), and every upgrade the app
refuses with an HTTP answer (401, 403, 503: "ASGI callable returned without completing
handshake"). Here the first is one info line and the same 1007 close, the second is a completed
handshake; and uvicorn's and websockets' per-handshake lines give way to our access line.
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

log = logging.getLogger("media_mgr.http")


class QuietWebSocketProtocol(WebSocketsSansIOProtocol):
    async def send(self, message: Any) -> None:
        """An upgrade refused with an HTTP answer (``send_denial_response``) is a finished handshake."""
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type == "text" and not self.close_sent:
            try:
                b"".join(self.frames).decode()
            except UnicodeDecodeError:
                self.frames = []
                peer = self.client[0] if self.client else None
                log.info("websocket closed: a text frame is not UTF-8", extra={"peer": peer, "code": 1007})
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()


class _OurAccessLineSays(logging.Filter):
    """Drops uvicorn's own lines about each WebSocket handshake ("WebSocket /path" 403, connection
    open/rejected/closed): the access line says the same once (method WS, path, status)."""

    TEMPLATES = frozenset({
        '%s - "WebSocket %s" %d', '%s - "WebSocket %s" 403', '%s - "WebSocket %s" [accepted]',  # uvicorn
        "connection open", "connection rejected (%d %s)", "HTTP response sent (%d %s)",  # websockets
        "connection closed",
    })  # fmt: skip

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in self.TEMPLATES


_UVICORN_LOG = logging.getLogger("uvicorn.error")
if not any(isinstance(f, _OurAccessLineSays) for f in _UVICORN_LOG.filters):
    _UVICORN_LOG.addFilter(_OurAccessLineSays())
