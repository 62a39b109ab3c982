"""ASGI middleware: a request id for every request, one access log line, request metrics.

Written as plain ASGI (not BaseHTTPMiddleware) so streamed bodies pass through untouched. It runs
for every request, stream URLs included (thousands a second), so the metric children are looked up
once per route and status, a request id is a per-process random prefix and a counter (unique, no
system call), and the log line's fields are built only when info is logged.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from media_mgr.logs import request_id
from media_mgr.metrics import Metrics

log = logging.getLogger("media_mgr.http")


class AccessMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._counted: dict[tuple[str, int], Any] = {}
        self._timed: dict[str, Any] = {}
        self._prefix = secrets.token_hex(4)
        self._serial = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = self.request_id(scope["headers"])
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
            self._count(getattr(route, "path", None) or "unmatched", status, elapsed)
            if log.isEnabledFor(logging.INFO):
                self._log(scope.get("method", "WS"), scope["path"], status, elapsed,
                          (scope.get("client") or ("", 0))[0])  # fmt: skip
            request_id.reset(token)

    def request_id(self, headers: Iterable[tuple[bytes, bytes]]) -> str:
        """The client's ``X-Request-Id`` when it is short printable text, else a new one."""
        return self.request_id_from(next((v for k, v in headers if k == b"x-request-id"), b""))

    def request_id_from(self, incoming: bytes) -> str:
        """:meth:`request_id` from the header's value (empty: none was sent)."""
        if 0 < len(incoming) <= 64:
            text = incoming.decode("latin-1")
            if text.isprintable():
                return text
        return f"{self._prefix}{next(self._serial) & 0xFFFFFFFF:08x}"

    def log_answered(self, rid: str, method: str, path: bytes, status: int, elapsed: float,
                     client: str) -> None:  # fmt: skip
        """The access line of a request answered outside :meth:`__call__` (``http.connection_limits``);
        count it with :meth:`count_answered`."""
        if log.isEnabledFor(logging.INFO):
            token = request_id.set(rid)
            try:
                self._log(method, path.decode("latin-1"), status, elapsed, client)
            finally:
                request_id.reset(token)

    def count_answered(self, route: str, status: int, times: list[float]) -> None:
        """Count requests answered outside :meth:`__call__` that took ``times``, in one call (the
        stream URLs' responder counts a loop turn's answers at once: one increment, not one each)."""
        counted, timed = self._children(route, status)
        counted.inc(len(times))
        for elapsed in times:
            timed.observe(elapsed)

    @staticmethod
    def _log(method: str, path: str, status: int, elapsed: float, client: str) -> None:
        extra = {"method": method, "path": path, "status": status, "ms": round(elapsed * 1000, 1),
                 "client": client}  # fmt: skip
        log.info("request", extra=extra)

    def _count(self, route: str, status: int, elapsed: float) -> None:
        counted, timed = self._children(route, status)
        counted.inc()
        timed.observe(elapsed)

    def _children(self, route: str, status: int) -> tuple[Any, Any]:
        """The request counter's and the timing histogram's children for these labels, looked up once."""
        counted = self._counted.get((route, status))
        if counted is None:
            counted = self._counted[(route, status)] = self.metrics.http_requests.labels(route, str(status))
        timed = self._timed.get(route)
        if timed is None:
            timed = self._timed[route] = self.metrics.http_seconds.labels(route)
        return counted, timed
