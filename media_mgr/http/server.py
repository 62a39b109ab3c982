"""The HTTP port: uvicorn serving the app on a socket bound beforehand, as one component.

``async with HttpServer(config, app, sock) as server`` returns once the port accepts connections
(logging ``listening http HOST:PORT``) and, on exit, stops accepting, lets requests in flight finish
within ``graceful_timeout``, and returns. ``await server.wait()`` lasts until SIGTERM or SIGINT (or
:meth:`stop`). Unlike plain uvicorn, the signal is not raised again afterwards: the components the
app uses still have to close (recordings flushed, events sent) before the process ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from media_mgr.config import Settings
from media_mgr.http.connection_limits import ConnectionLimits, protocol_class
from media_mgr.logs import LISTENING_LOGGER

log = logging.getLogger("media_mgr.http")


class HttpStartFailed(RuntimeError):
    """uvicorn gave up before accepting connections (its log says why)."""


@dataclass(frozen=True)
class HttpServerConfig:
    limits: ConnectionLimits
    keep_alive: int = 5
    ws_max_size: int = 256 * 1024
    graceful_timeout: int = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        limits = ConnectionLimits(
            max_head_bytes=settings.http_max_head_bytes,
            head_timeout=settings.timeout_http_head,
            max_connections=settings.http_max_connections,
        )
        return cls(limits, settings.timeout_http_keep_alive, settings.limit_ws_message_bytes)


class HttpServer:
    def __init__(self, config: HttpServerConfig, app: FastAPI, sock: socket.socket) -> None:
        self.sock = sock
        self._server = _Server(
            uvicorn.Config(
                app,
                loop="uvloop",
                http=protocol_class(config.limits),
                ws=_WebSocketProtocol,
                timeout_keep_alive=config.keep_alive,
                lifespan="off",  # the app's dependencies are opened and closed around the server
                log_config=None,
                access_log=False,
                server_header=False,
                timeout_graceful_shutdown=config.graceful_timeout,
                ws_max_size=config.ws_max_size,
            )
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._server.serve(sockets=[self.sock]), name="http.server")
        started = asyncio.create_task(self._server.started_event.wait())
        await asyncio.wait({self._task, started}, return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if not self._server.started:
            await self._task
            raise HttpStartFailed("the HTTP server did not start")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self._task is not None:
            await self._task

    def stop(self) -> None:
        """Stop accepting; requests in flight get ``graceful_timeout`` to finish."""
        self._server.should_exit = True

    async def wait(self) -> None:
        """Until the server stops (a signal, or :meth:`stop`)."""
        if self._task is not None:
            await asyncio.shield(self._task)


class _WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, except that an upgrade refused with an HTTP answer (the app's
    ``send_denial_response``: 401, 403, 503) counts as a completed handshake. uvicorn's own logs
    "ASGI callable returned without completing handshake" at ERROR for each such refusal."""

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True


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


class _Server(uvicorn.Server):
    """uvicorn's server: announces its port once it accepts connections, keeps the signals it caught."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.started_event = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, without raising the caught signal again once serving ended."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            for srv in self.servers:
                for sock in srv.sockets:
                    host, port = sock.getsockname()[:2]
                    logging.getLogger(LISTENING_LOGGER).info(f"listening http {host}:{port}")
            self.started_event.set()
