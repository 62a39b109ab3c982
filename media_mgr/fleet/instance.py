"""This instance as a member of the fleet: registered, beating, and watching the others.

Liveness has two signals, and both must agree before anything is taken from an instance: its row's
heartbeat (older than the grace, counted from the database's start when that is later) and its
recording owner lock (free, so its database session is gone). The survivor that probes the lock
then runs ``InstanceStore.declare_gone``, a conditional UPDATE that only one caller can win, and
only that one closes the dead instance's recordings and tells the components that take over its
other live things (``on_gone``). An instance that was only cut off, and comes back after that,
finds its row ended: it registers again and tells its own components (``on_declared_gone``) that
what it held was taken over, so nothing runs twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import socket
from collections.abc import Awaitable, Callable

from media_mgr.fleet.config import FleetConfig
from media_mgr.ids import new_id
from media_mgr.isotime import iso
from media_mgr.lifecycle import Component
from media_mgr.recording.recorder import Recorder
from media_mgr.store.errors import StoreUnavailable
from media_mgr.store.instances import InstanceRow, InstanceStore
from media_mgr.tasks import TaskSet

log = logging.getLogger("media_mgr.fleet")

GoneHandler = Callable[[InstanceRow], Awaitable[None]]


def fleet_token(secret: bytes) -> str:
    """What instances show each other (``X-Media-Mgr-Fleet``): derived from the shared secret, so
    every instance of one database knows it and nothing outside does."""
    return hmac.new(secret, b"media-mgr fleet v1", hashlib.sha256).hexdigest()


class Fleet(Component):
    def __init__(
        self,
        store: InstanceStore,
        recorder: Recorder,
        config: FleetConfig,
        *,
        internal_url: str,
        secret: bytes,
    ) -> None:
        self.id = new_id()
        self.internal_url = internal_url
        self.token = fleet_token(secret)
        self.config = config
        self._store = store
        self._recorder = recorder
        self._on_gone: list[GoneHandler] = []
        self._on_declared_gone: list[Callable[[], Awaitable[None]]] = []
        self._tasks = TaskSet("fleet", log)

    def on_gone(self, handler: GoneHandler) -> None:
        """``handler(row)`` runs on the one survivor that declared ``row``'s instance gone, after
        its recordings were closed: take over what it held (relays, sessions, mounts)."""
        self._on_gone.append(handler)

    def on_declared_gone(self, handler: Callable[[], Awaitable[None]]) -> None:
        """``handler()`` runs here when this instance finds it was declared gone while cut off:
        what it held has been taken over by a survivor, so drop it."""
        self._on_declared_gone.append(handler)

    async def start(self) -> None:
        await self._register()
        log.info("instance registered", extra=self.public())
        self._tasks.spawn(self._run(), name="fleet.beat")

    async def stop(self) -> None:
        await self._tasks.stop()
        with contextlib.suppress(StoreUnavailable):
            await self._store.stopped(self.id)

    def public(self) -> dict[str, object]:
        return {"instance_id": self.id, "pid": os.getpid(), "worker": self.config.worker,
                "internal_url": self.internal_url}  # fmt: skip

    async def members(self) -> list[dict[str, object]]:
        """Every live instance and those ended within the listing window, for ``GET /v1/instances``."""
        rows = await self._store.listing(self.config.listed_after_end_seconds)
        return [
            {"id": r.id, "host": r.host, "pid": r.pid, "worker": r.worker, "internal_url": r.internal_url,
             "started_at": iso(r.started_at), "heartbeat_at": iso(r.heartbeat_at),
             "state": "live" if r.live else r.end_reason, "ended_at": iso(r.ended_at),
             "ended_by": r.ended_by, "self": r.id == self.id}
            for r in rows
        ]  # fmt: skip

    async def live_member(self, instance_id: str) -> InstanceRow | None:
        row = await self._store.get(instance_id)
        return row if row is not None and row.live else None

    async def _register(self) -> None:
        await self._store.register(
            self.id, owner_key=self._recorder.owner, host=socket.gethostname(), pid=os.getpid(),
            worker=self.config.worker, internal_url=self.internal_url,
        )  # fmt: skip

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_watch = loop.time() + self.config.grace_seconds
        while True:
            await asyncio.sleep(self.config.beat_seconds)
            try:
                if not await self._store.beat(self.id):
                    await self._come_back()
                if loop.time() >= next_watch:
                    next_watch = loop.time() + self.config.grace_seconds / 2
                    await self.watch()
            except StoreUnavailable as exc:  # store/outage.py tells the operator once
                log.debug("fleet beat failed", extra={"error": repr(exc)})
            except Exception:  # a beat that dies would get this instance declared gone: go on
                log.exception("fleet beat failed")

    async def _come_back(self) -> None:
        row = await self._store.get(self.id)
        by = row.ended_by if row is not None else None
        log.warning("this instance had been declared gone while cut off from the database; "
                    "its recordings were closed and its live things taken over; registering again",
                    extra={"instance_id": self.id, "declared_by": by})  # fmt: skip
        for handler in list(self._on_declared_gone):
            try:
                await handler()
            except Exception:
                log.exception("declared-gone handler failed")
        await self._register()

    async def watch(self) -> list[InstanceRow]:
        """Declare gone, once across the fleet, every silent instance whose lock is free."""
        gone: list[InstanceRow] = []
        for row in await self._store.silent(self.id, self.config.grace_seconds):

            async def decide(row: InstanceRow = row) -> bool:
                return await self._store.declare_gone(row.id, self.id, self.config.grace_seconds)

            closed = await self._recorder.take_over(row.owner_key, decide)
            if closed is None:
                continue
            log.warning("instance declared gone", extra={"gone_instance": row.id, "pid": row.pid,
                        "host": row.host, "recordings_closed": len(closed)})  # fmt: skip
            gone.append(row)
            for handler in list(self._on_gone):
                try:
                    await handler(row)
                except Exception:
                    log.exception("taking over from a gone instance failed", extra={"gone_instance": row.id})
        return gone

    async def purge(self) -> None:
        """Forget rows of instances that ended long ago (the sweeper calls this)."""
        await self._store.purge(self.config.listed_after_end_seconds)
