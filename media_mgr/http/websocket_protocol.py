"""uvicorn's sans-I/O WebSocket protocol, with a client's invalid UTF-8 answered as the client's fault.

uvicorn's ``websockets-sansio`` implementation is the cheapest WebSocket stack it offers (the
audio_stream endpoint's frames are most of its work), but a text frame that is not UTF-8 makes it
log an ERROR with a traceback before closing 1007. A module sending garbage is not our failure:
here it is one info line and the same 1007 close.
"""

from __future__ import annotations

import logging

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

log = logging.getLogger("media_mgr.http")


class QuietWebSocketProtocol(WebSocketsSansIOProtocol):
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
