"""Live mounts across the fleet: ours registered in PostgreSQL, others' mirrored for our listeners.

Every mount a source claims here gets a ``live_mounts`` row (written in claim/release order by
one task; removed when the source ends, when this instance stops, or by the survivor that declares
it gone). A listener (or a relay) asking for a mount we do not hold gets a *mirror*: a local
``Mount`` fed by one stream from the owner's internal port (``GET /internal/mounts/{name}``,
http/internal_mounts.py), re-framed into whole MP3 frames, so N listeners here cost one upstream.
The mirror ends with the upstream (the source ended, the owner went away) or once its last
listener left; queues are bounded as for any mount (the owner drops a mirror that falls too far
behind, as it drops any slow listener).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from types import TracebackType
from typing import Self
from urllib.parse import quote

import httpx

from media_mgr.audio.mpeg import MpegFramer
from media_mgr.errors import MediaMgrError
from media_mgr.fleet.instance import Fleet
from media_mgr.fleet.peers import Peers
from media_mgr.live.mount import Mount
from media_mgr.live.registry import MountRegistry
from media_mgr.store.errors import StoreUnavailable
from media_mgr.store.instances import InstanceRow
from media_mgr.store.live_fleet import LiveMountStore
from media_mgr.tasks import TaskSet

log = logging.getLogger("media_mgr.shout.fleet")

INTERNAL_MOUNTS = "/internal/mounts"
MOUNT_INFO_HEADER = "x-media-mgr-mount-info"  # as http/internal_mounts.py sends it
UNHEARD_SECONDS = 5.0  # a mirror nobody attached to (the listener left during the lookup) ends
WRITE_RETRIES = 10  # a row write the database refused is tried this often, a second apart


class FleetMounts:
    """``async with FleetMounts(...)``: registers our mounts while inside; ``mirror(name)`` for the rest."""

    def __init__(self, registry: MountRegistry, store: LiveMountStore, fleet: Fleet, peers: Peers) -> None:
        self.registry = registry
        self._store = store
        self._fleet = fleet
        self._peers = peers
        self._mirrors: dict[str, Mount] = {}
        self._opening: dict[str, asyncio.Future[Mount | None]] = {}
        self._writes: asyncio.Queue[tuple[bool, Mount]] = asyncio.Queue()
        self._tasks = TaskSet("shout.fleet_mounts", log)

    async def __aenter__(self) -> Self:
        self.registry.watch(self._claimed)
        self.registry.watch_release(self._released)
        self._fleet.on_gone(self._gone)
        self._fleet.on_declared_gone(self._declared_gone)
        self._tasks.spawn(self._write_rows(), name="live mount rows")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.registry.unwatch(self._claimed)
        self.registry.unwatch_release(self._released)
        await self._tasks.stop()
        for mount in list(self._mirrors.values()):
            mount.end()
        self._mirrors.clear()
        with contextlib.suppress(StoreUnavailable):
            await self._store.remove_instance(self._fleet.id)

    @property
    def mirrors(self) -> dict[str, Mount]:
        return dict(self._mirrors)

    # -- our mounts in the table -------------------------------------------------------------------

    def _claimed(self, mount: Mount) -> None:
        self._writes.put_nowait((True, mount))

    def _released(self, mount: Mount) -> None:
        self._writes.put_nowait((False, mount))

    async def _write_rows(self) -> None:
        """One writer, so a mount's row is added and removed in the order the source did it."""
        while True:
            add, mount = await self._writes.get()
            if add and not mount.live:
                continue  # already released: its removal is queued behind
            for attempt in range(WRITE_RETRIES):
                try:
                    if add:
                        await self._store.add(mount.name, self._fleet.id, mount.content_type, mount.info)
                    else:
                        await self._store.remove(mount.name, self._fleet.id)
                    break
                except StoreUnavailable as exc:
                    if attempt + 1 == WRITE_RETRIES:
                        log.warning("could not record a live mount in the fleet registry",
                                    extra={"mount": mount.name, "error": str(exc)})  # fmt: skip
                    else:
                        await asyncio.sleep(1.0)

    async def _gone(self, row: InstanceRow) -> None:
        removed = await self._store.remove_instance(row.id)
        if removed:
            log.info("live mounts of a gone instance forgotten", extra={"gone_instance": row.id,
                                                                       "mounts": removed})  # fmt: skip

    async def _declared_gone(self) -> None:
        """We were declared gone while cut off, and our rows removed: our sources still stream
        here, so their mounts are registered again."""
        for mount in self.registry.mounts():
            self._writes.put_nowait((True, mount))

    async def taken_elsewhere(self, name: str) -> bool:
        """Whether a live instance other than this one has a source on ``name``; if none has, the
        mount is registered as this instance's in the same transaction, so that of two sources
        arriving on two instances at once only one is let in. A database that cannot be asked lets
        the source in (recording comes first; the mount is this instance's)."""
        try:
            return not await self._store.claim(name, self._fleet.id, "audio/mpeg", {})
        except StoreUnavailable:
            return False

    # -- mirrors of other instances' mounts --------------------------------------------------------

    async def mirror(self, name: str) -> Mount | None:
        """The mount ``name`` held by another live instance, mirrored here (one upstream for every
        listener of this instance); None when no live instance holds it."""
        mount = self._mirrors.get(name)
        if mount is not None and mount.live:
            return mount
        opening = self._opening.get(name)
        if opening is None:
            opening = asyncio.get_running_loop().create_future()
            self._opening[name] = opening
            self._tasks.spawn(self._upstream(name, opening), name=f"mirror {name}")
        return await asyncio.shield(opening)

    def _opened(self, name: str, opening: asyncio.Future[Mount | None], mount: Mount | None) -> None:
        if not opening.done():
            opening.set_result(mount)
        if self._opening.get(name) is opening:
            del self._opening[name]

    async def _upstream(self, name: str, opening: asyncio.Future[Mount | None]) -> None:
        loop = asyncio.get_running_loop()
        mount: Mount | None = None
        try:
            holder = await self._store.holder(name, self._fleet.id)
            if holder is None:
                return
            path = INTERNAL_MOUNTS + quote(name, safe="/")
            async with self._peers.stream(holder.instance_id, path) as response:
                where = {"mount": name, "holder": holder.instance_id}
                if response.status_code != 200:
                    where["status"] = str(response.status_code)
                    log.info("mount not served by its holder", extra=where)
                    return
                registry = self.registry
                mount = Mount(name, queue_bytes=registry.queue_bytes, burst_bytes=registry.burst_bytes)
                mount.content_type = response.headers.get("content-type", holder.content_type)
                mount.info = _info(response.headers.get(MOUNT_INFO_HEADER), holder.info)
                self._mirrors[name] = mount
                self._opened(name, opening, mount)
                log.info("mirroring a mount of another instance", extra=where)
                opened_at = loop.time()
                framer = MpegFramer()
                async for piece in response.aiter_raw():
                    frames, _ = framer.feed(piece)
                    mount.publish(frames)
                    unheard = loop.time() - opened_at > UNHEARD_SECONDS
                    if mount.listeners == 0 and (mount.listeners_total or unheard):
                        log.info("mirror has no listener left", extra={"mount": name})
                        return
                mount.publish(framer.flush())  # the source ended: its last frame
        except (MediaMgrError, httpx.HTTPError) as exc:  # the database or the holder went away
            log.info("mirror ended", extra={"mount": name, "error": repr(exc)})
        finally:
            self._opened(name, opening, None)
            if mount is not None:
                if self._mirrors.get(name) is mount:
                    del self._mirrors[name]
                mount.end()


def _info(header: str | None, fallback: dict[str, str]) -> dict[str, str]:
    """The owner's ice-* info from its header (strings only), else what the registry row says."""
    try:
        info = json.loads(header) if header else fallback
    except ValueError:
        info = fallback
    if not isinstance(info, dict):
        return {}
    return {str(k): str(v) for k, v in info.items() if isinstance(v, str)}
