"""The HTTP port: uvicorn serving the app on a socket bound beforehand, as one component.

``async with HttpServer(config, app, sock) as server`` returns once the port accepts connections
(logging ``listening http HOST:PORT``) and, on exit, stops accepting, lets requests in flight finish
within ``graceful_timeout``, and returns. ``await server.wait()`` lasts until SIGTERM or SIGINT (or
:meth:`stop`). Unlike plain uvicorn, the signal is not raised again afterwards: the components the
app uses still have to close (recordings flushed, events sent) before the process ends. Every
connection waiting on a port is taken as soon as the port is readable (``http.accept``), not one per
loop iteration as uvloop does.
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
from typing import Self

import uvicorn
from fastapi import FastAPI

from media_mgr.config import Settings
from media_mgr.http.accept import AcceptAll
from media_mgr.http.connection_limits import ConnectionLimits, protocol_class
from media_mgr.http.playback import StreamAnswers
from media_mgr.http.websocket_protocol import QuietWebSocketProtocol
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
    def __init__(
        self, config: HttpServerConfig, app: FastAPI, sock: socket.socket, *extra: socket.socket
    ) -> None:
        self.sock = sock
        self._answers: StreamAnswers | None = getattr(app.state, "stream_answers", None)
        self._sockets = [sock, *extra]  # the instance's internal port serves the same app
        self._server = _Server(
            uvicorn.Config(
                app,
                loop="uvloop",
                http=protocol_class(config.limits, self._answers),
                ws=QuietWebSocketProtocol,  # uvicorn's websockets-sansio, the cheapest it has
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
        self._task = asyncio.create_task(self._server.serve(sockets=self._sockets), name="http.server")
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
        self._server.stop_accepting()  # when it stopped before shutting down (a signal while starting)
        if self._answers is not None:
            self._answers.close()

    def stop(self) -> None:
        """Stop accepting; requests in flight get ``graceful_timeout`` to finish."""
        self._server.should_exit = True

    async def wait(self) -> None:
        """Until the server stops (a signal, or :meth:`stop`)."""
        if self._task is not None:
            await asyncio.shield(self._task)


class _Server(uvicorn.Server):
    """uvicorn's server: announces its port once it accepts connections, keeps the signals it caught."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.started_event = asyncio.Event()
        self._accepting: list[AcceptAll] = []

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
            config, state, app_state = self.config, self.server_state, self.lifespan.state

            def protocol() -> asyncio.Protocol:  # uvicorn's own factory, for the connections AcceptAll takes
                return config.http_protocol_class(config=config, server_state=state, app_state=app_state)  # type: ignore[call-arg]

            self._accepting = [AcceptAll(sock, protocol) for sock in sockets or ()]
            public = sockets[0].getsockname() if sockets else None
            for srv in self.servers:
                for sock in srv.sockets:
                    host, port = sock.getsockname()[:2]
                    # The instance's own port (fleet) is named apart: "listening http" is the shared one.
                    kind = "http" if public is None or sock.getsockname() == public else "internal"
                    logging.getLogger(LISTENING_LOGGER).info(f"listening {kind} {host}:{port}")
            self.started_event.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.stop_accepting()
        await super().shutdown(sockets)

    def stop_accepting(self) -> None:
        for accepting in self._accepting:
            accepting.close()
        self._accepting = []
