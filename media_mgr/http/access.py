"""ASGI middleware: a request id for every request, one access log line, request metrics.

Written as plain ASGI (not BaseHTTPMiddleware) so streamed bodies pass through untouched.
"""

from __future__ import annotations

import logging
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from media_mgr.logs import request_id
from media_mgr.metrics import Metrics

log = logging.getLogger("media_mgr.http")


class AccessMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else secrets.token_hex(8)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.close" and status == 0:  # closed before accept: uvicorn answers 403
                status = 403
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_name = getattr(route, "path", None) or "unmatched"
            self.metrics.http_requests.labels(route_name, str(status)).inc()
            self.metrics.http_seconds.labels(route_name).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": scope.get("method", "WS"),
                    "path": scope["path"],
                    "status": status,
                    "ms": round(elapsed * 1000, 1),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
            request_id.reset(token)
