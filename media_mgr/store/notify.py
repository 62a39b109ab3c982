"""PostgreSQL LISTEN/NOTIFY: changes made by one instance heard by every other, in milliseconds.

:func:`notify` sends a payload on a channel, inside the caller's transaction where there is one,
so the notification goes out exactly when the change commits (and never for a change rolled back).
:class:`Listener` keeps one dedicated connection LISTENing for its subscribers. It survives a
PostgreSQL restart or a killed backend: it reconnects and LISTENs again, and because anything sent
while it was away is lost, every subscriber is told twice: ``on_reset(False)`` as soon as the
connection is known lost (from now on notifications may be missed: stop trusting what you cached)
and ``on_reset(True)`` once it listens again (anything before may have been missed: start over).
A connection that went silent without closing (a vanished host) is found by a periodic probe.

Callbacks run on the event loop and must not block; payloads are ``str`` (PostgreSQL allows up to
8000 bytes). The API is generic on purpose: caches, the fleet registry and relays share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import asyncpg

from media_mgr.store.pool import DRIVER_ERRORS, Connection, Database

log = logging.getLogger("media_mgr.store")

_LOST: tuple[type[BaseException], ...] = (*DRIVER_ERRORS, asyncpg.PostgresError, asyncpg.InternalClientError)
"""What a listening connection's failure may raise: it is then treated as lost."""

OnNotify = Callable[[str], None]
OnReset = Callable[[bool], None]


async def notify(db: Connection | Database, channel: str, payload: str) -> None:
    """``NOTIFY channel, payload``; on a transaction's connection it is sent when that commits."""
    await db.execute("SELECT pg_notify($1, $2)", channel, payload)


@dataclass(frozen=True, eq=False)
class Subscription:
    channel: str
    on_notify: OnNotify
    on_reset: OnReset


@dataclass(frozen=True)
class ListenerConfig:
    dsn: str
    connect_timeout: float = 5.0
    probe_every: float = 2.0
    """Seconds between liveness probes of the idle listening connection (also its probe timeout)."""
    retry_min: float = 0.1
    retry_max: float = 5.0


class Listener:
    """One listening connection shared by every subscriber; ``async with`` starts and stops it."""

    def __init__(self, config: ListenerConfig) -> None:
        self.config = config
        self._subs: dict[str, list[Subscription]] = {}
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._using = asyncio.Lock()  # one statement at a time on the connection (LISTEN, probe)
        self._late: set[asyncio.Task[None]] = set()
        self.live = False
        """Whether every notification sent from now on will be heard (listening, connection up)."""
        self.connects = 0  # how many times it (re)connected: tests and metrics read it

    def subscribe(self, channel: str, on_notify: OnNotify, on_reset: OnReset) -> Subscription:
        """Hear ``channel``; ``on_reset`` is called at once with whether it is live already."""
        sub = Subscription(channel, on_notify, on_reset)
        first = channel not in self._subs
        self._subs.setdefault(channel, []).append(sub)
        if first and self._conn is not None:
            # A new channel on a live connection: not live for this channel until LISTEN is done.
            sub.on_reset(False)
            task = asyncio.get_running_loop().create_task(self._listen_late(sub), name="store.listen")
            self._late.add(task)
            task.add_done_callback(self._late.discard)
        else:
            sub.on_reset(self.live)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.channel, [])
        if sub in subs:
            subs.remove(sub)

    async def __aenter__(self) -> Self:
        with contextlib.suppress(*_LOST):
            await self._connect()  # the first try in the open: a failure is retried in the background
        self._task = asyncio.create_task(self._run(), name="store.listener")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in [*self._late, *([self._task] if self._task else [])]:
            task.cancel()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._drop_connection()
        await self._close()

    async def _run(self) -> None:
        delay = self.config.retry_min
        while True:
            if self._conn is None:
                try:
                    await self._connect()
                except _LOST as exc:
                    log.debug("listener: connect failed", extra={"error": type(exc).__name__})
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.config.retry_max)
                    continue
            delay = self.config.retry_min
            await self._watch()
            self._drop_connection()
            await self._close()
            log.info("listener: connection to PostgreSQL lost; reconnecting")  # outage.py warns once

    async def _connect(self) -> None:
        conn = await asyncpg.connect(
            self.config.dsn,
            timeout=self.config.connect_timeout,
            server_settings={"application_name": "media-mgr listener"},
        )
        try:
            for channel in list(self._subs):
                await conn.add_listener(channel, self._deliver)
        except BaseException:
            conn.terminate()
            raise
        self._lost.clear()
        conn.add_termination_listener(self._terminated)
        self._conn = conn
        self.connects += 1
        self.live = True
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.on_reset(True)
        if self.connects > 1:
            log.info("listener: listening again; caches were dropped")

    async def _watch(self) -> None:
        """Until the connection is lost: closed (termination listener) or silent (the probe)."""
        conn = self._conn
        assert conn is not None
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self.config.probe_every)
                return
            try:
                async with self._using:
                    await conn.fetchval("SELECT 1", timeout=self.config.probe_every)
            except _LOST:
                return

    async def _listen_late(self, sub: Subscription) -> None:
        conn = self._conn
        if conn is None:
            return  # the next connect LISTENs and resets it
        try:
            async with self._using:
                await conn.add_listener(sub.channel, self._deliver)
        except _LOST:
            self._lost.set()
            return
        if self._conn is conn and self.live:
            sub.on_reset(True)

    def _deliver(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        for sub in list(self._subs.get(channel, ())):
            try:
                sub.on_notify(str(payload))
            except Exception:
                log.exception("listener: a subscriber failed", extra={"channel": channel})

    def _terminated(self, conn: Any) -> None:
        self._drop_connection()

    def _drop_connection(self) -> None:
        """From now on notifications may be missed: say so once, at once."""
        self._lost.set()
        if self.live:
            self.live = False
            for subs in list(self._subs.values()):
                for sub in list(subs):
                    sub.on_reset(False)

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2)
            except _LOST:
                conn.terminate()
