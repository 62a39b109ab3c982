"""The SHOUT listener's lifecycle: ``async with ShoutServer(...)`` serves a bound socket until exit.

Shared state sits in one ``ServerState`` handed to every connection (uvicorn's ``ServerState``); a
connection sees it only as the ``ShoutHost`` protocol. Every task (a source being admitted, a
source streaming) runs in one of the server's ``TaskSet``s, so a failure is logged and none
outlives the server. Exit closes the listening socket, ends every source (its recording
``interrupted``, audio committed) and closes listeners, waits up to ``stop_timeout``, then cancels
and aborts what is left. The server's /metrics collector is registered for as long as it runs.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from prometheus_client import CollectorRegistry

from media_mgr.errors import MediaMgrError
from media_mgr.live.mount import Mount
from media_mgr.live.registry import MountRegistry
from media_mgr.media.activity import ActivityRegistry
from media_mgr.recording.ingest import Ingest, NewRecording
from media_mgr.recording.recorder import Recorder
from media_mgr.shout.auth import SourceAuth, SourceGrant
from media_mgr.shout.collector import ShoutCollector
from media_mgr.shout.config import ShoutConfig
from media_mgr.shout.host import Connection
from media_mgr.shout.protocol import ShoutProtocol
from media_mgr.shout.source import SourceSession
from media_mgr.tasks import TaskSet

log = logging.getLogger("media_mgr.shout")


@dataclass
class ServerState:
    """What every connection shares; implements ``ShoutHost``."""

    config: ShoutConfig
    recorder: Recorder
    registry: MountRegistry
    auth: SourceAuth
    activity: ActivityRegistry | None = None
    elsewhere: Callable[[str], Awaitable[Mount | None]] | None = None  # the fleet's mirrors
    taken_elsewhere: Callable[[str], Awaitable[bool]] | None = None  # a source on another instance
    connections: set[Connection] = field(default_factory=set)
    sources: set[SourceSession] = field(default_factory=set)
    stats: Counter[str] = field(default_factory=Counter)
    admitting: TaskSet = field(default_factory=lambda: TaskSet("shout.admit", log))
    streaming: TaskSet = field(default_factory=lambda: TaskSet("shout.sources", log))

    async def begin(self, grant: SourceGrant, peer: str) -> Ingest:
        if grant.recording_id is not None:
            return await self.recorder.begin(grant.recording_id, origin="shout", peer=peer)
        new = NewRecording(None, grant.mount.rsplit("/", 1)[-1])
        return await self.recorder.begin_new(new, origin="shout", peer=peer)

    async def give_back(self, ingest: Ingest) -> None:
        try:
            await self.recorder.cancel(ingest)
        except MediaMgrError as exc:  # StoreUnavailable is one
            log.warning("could not give the recording back", extra={"recording_id": ingest.id,
                                                                    "error": repr(exc)})  # fmt: skip

    def opened(self, conn: Connection) -> bool:
        if len(self.connections) >= self.config.max_connections:
            return False
        self.connections.add(conn)
        return True

    def closed(self, conn: Connection) -> None:
        self.connections.discard(conn)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self.admitting.spawn(coro, name=name)

    def source_started(self, session: SourceSession, peer: str) -> None:
        mount, ingest = session.mount, session.ingest
        session.task = self.streaming.spawn(
            session.run(), name=f"shout source {mount.name}", on_done=lambda _: self._source_done(session)
        )
        self.sources.add(session)
        if self.activity is not None:
            session.activity = self.activity.start(
                "recording", ingest.id, peer, mount=mount.name, origin="shout",
                live=lambda: {"bytes": session.received, "listeners": mount.listeners,
                              "duration_ms": ingest.duration_ms},
            )  # fmt: skip

    def _source_done(self, session: SourceSession) -> None:
        self.sources.discard(session)
        if self.activity is not None and session.activity is not None:
            self.activity.end(session.activity)
        self.stats["sources_total"] += 1


class ShoutServer:
    """``async with ShoutServer(config, sock, ...)``: serves ``sock`` (bound by the caller) until exit."""

    def __init__(
        self,
        config: ShoutConfig,
        sock: socket.socket,
        *,
        recorder: Recorder,
        registry: MountRegistry,
        auth: SourceAuth,
        activity: ActivityRegistry | None = None,
        metrics: CollectorRegistry | None = None,
        elsewhere: Callable[[str], Awaitable[Mount | None]] | None = None,
        taken_elsewhere: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.state = ServerState(config, recorder, registry, auth, activity, elsewhere=elsewhere,
                                 taken_elsewhere=taken_elsewhere)  # fmt: skip
        self.sock = sock
        self._metrics = metrics
        self._collector = ShoutCollector(self.state)
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        if self._metrics is not None:
            self._metrics.register(self._collector)
        try:
            self._server = await asyncio.get_running_loop().create_server(
                lambda: ShoutProtocol(self.state), sock=self.sock, backlog=1024
            )
        except BaseException:
            if self._metrics is not None:
                self._metrics.unregister(self._collector)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._stop(self.state.config.stop_timeout)
        finally:
            if self._metrics is not None:
                self._metrics.unregister(self._collector)

    async def _stop(self, timeout: float) -> None:
        """Stop accepting, end sources and listeners, wait up to ``timeout``, then cancel and abort."""
        st = self.state
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._server is not None:
            self._server.close()
        for conn in list(st.connections):
            conn.shutdown()
        ending = [s.task for s in st.sources if s.task is not None]
        if ending:
            await asyncio.wait(ending, timeout=timeout)
        await st.admitting.stop(max(0.1, deadline - loop.time()))
        await st.streaming.stop(max(0.1, deadline - loop.time()))
        for conn in list(st.connections):
            conn.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        log.info("shout server stopped")
