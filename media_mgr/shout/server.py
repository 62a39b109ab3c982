"""The SHOUT listener's lifecycle: serve a bound socket, count, stop in order.

Shared state sits in one ``ServerState`` handed to every connection (uvicorn's ``ServerState``):
the config, the recorder, the mount registry, source auth, the live connections and sources. Stop
closes the listening socket, ends every source (its recording ``interrupted``, audio committed)
and closes listeners, waits up to a deadline, then aborts what is left.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from media_mgr.live.registry import MountRegistry
from media_mgr.media.activity import ActivityRegistry
from media_mgr.recording.recorder import Recorder
from media_mgr.shout.auth import SourceAuth
from media_mgr.shout.protocol import ShoutProtocol
from media_mgr.shout.source import SourceSession

log = logging.getLogger("media_mgr.shout")


@dataclass(frozen=True)
class ShoutConfig:
    head_timeout: float = 15.0  # Icecast header-timeout
    source_timeout: float = 10.0  # Icecast source-timeout
    listener_timeout: float = 30.0  # Icecast client-timeout: a listener that stopped reading
    max_head_bytes: int = 8192
    max_connections: int = 4096
    source_buffer_bytes: int = 64 * 1024  # body bytes waiting before reading pauses


@dataclass
class ServerState:
    config: ShoutConfig
    recorder: Recorder
    registry: MountRegistry
    auth: SourceAuth
    activity: ActivityRegistry | None = None
    connections: set[ShoutProtocol] = field(default_factory=set)
    sources: set[SourceSession] = field(default_factory=set)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    stats: Counter[str] = field(default_factory=Counter)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def source_done(self, session: SourceSession) -> None:
        self.sources.discard(session)
        if self.activity is not None and session.activity is not None:
            self.activity.end(session.activity)
        self.stats["sources_total"] += 1


class ShoutServer:
    def __init__(
        self, config: ShoutConfig, recorder: Recorder, registry: MountRegistry, auth: SourceAuth,
        activity: ActivityRegistry | None = None,
    ) -> None:  # fmt: skip
        self.state = ServerState(config, recorder, registry, auth, activity)
        self._server: asyncio.Server | None = None

    async def start(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: ShoutProtocol(self.state), sock=sock, backlog=1024)

    async def stop(self, timeout: float = 10.0) -> None:
        st = self.state
        if self._server is not None:
            self._server.close()
        for conn in list(st.connections):
            conn.shutdown()
        waiting = [s.task for s in st.sources] + list(st.tasks)
        if waiting:
            _done, pending = await asyncio.wait(waiting, timeout=timeout)
            for task in pending:
                task.cancel()
        for conn in list(st.connections):
            if conn.transport is not None:
                conn.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        log.info("shout server stopped")

    def snapshot(self) -> dict[str, Any]:
        st = self.state
        return {
            "connections": len(st.connections),
            "sources": len(st.sources),
            "mounts": st.registry.snapshot(),
            **dict(st.stats),
        }


class ShoutCollector:
    """The SHOUT side's gauges and counters for /metrics, read from the live objects when scraped."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    def collect(self) -> list[Metric]:
        st = self.state
        mounts = st.registry.mounts()
        gauges = {
            "media_mgr_shout_connections": ("open SHOUT-port connections", len(st.connections)),
            "media_mgr_shout_sources": ("sources streaming now", len(st.sources)),
            "media_mgr_shout_listeners": ("live-mount listeners now", sum(m.listeners for m in mounts)),
            "media_mgr_shout_queue_bytes": (
                "audio queued in live mounts",
                sum(m.queued_bytes for m in mounts),
            ),
            "media_mgr_recording_buffer_bytes": (
                "recorded audio accepted, not yet committed to PostgreSQL",
                sum(i.buffered for i in st.recorder.live()),
            ),
        }
        found: list[Metric] = [GaugeMetricFamily(name, doc, value=v) for name, (doc, v) in gauges.items()]
        found.append(CounterMetricFamily("media_mgr_shout_listeners_dropped",
                                         "listeners dropped: too slow for the queue, or not reading",
                                         value=st.stats["listeners_dropped"]))  # fmt: skip
        found.append(CounterMetricFamily("media_mgr_shout_sources_ended", "sources that ended",
                                         value=st.stats["sources_total"]))  # fmt: skip
        return found

    def describe(self) -> list[Metric]:
        return []
