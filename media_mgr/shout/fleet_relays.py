"""Relays across the fleet: stored in PostgreSQL, run by one owner instance, taken over when it dies.

The ``relays`` table is the truth: a row per relay, naming the instance that runs it. This
instance's ``RelayManager`` runs exactly the rows it owns; every second it starts what it owns
and does not run (a relay taken over, or one whose start failed), stops what it runs and no longer
owns (deleted through another instance, or moved), adopts rows whose owner stopped cleanly, and
re-attaches live-mount relays whose source came back. When an instance is declared gone, the one
survivor that declared it moves its relays to itself (one UPDATE) and starts them; an instance
that finds it was declared gone while cut off stops every relay it ran (they run elsewhere now).

The API works on any instance: a new relay of a live mount runs where the mount's source is (the
request is forwarded there), the listing comes from the table with each owner's live state, and
a deletion removes the row and tells the owner, which also stops it by itself at its next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from media_mgr.errors import Conflict, InvalidRequest, MediaMgrError, NotFound, Unavailable, Unprocessable
from media_mgr.fleet.instance import Fleet
from media_mgr.fleet.peers import PeerResponse, Peers, PeerUnavailable
from media_mgr.isotime import iso
from media_mgr.shout.relays import RelayManager
from media_mgr.store.errors import StoreUnavailable
from media_mgr.store.instances import InstanceRow
from media_mgr.store.live_fleet import LiveMountStore, RelayRow, RelayStore
from media_mgr.tasks import TaskSet

log = logging.getLogger("media_mgr.shout.relay")

PASS_SECONDS = 1.0
RETRY_FAILED_SECONDS = 30.0  # a relay that could not start here (its item deleted ...) is tried again


_BY_STATUS: dict[int, type[MediaMgrError]] = {
    400: InvalidRequest, 404: NotFound, 409: Conflict, 422: Unprocessable,
}  # fmt: skip


def forwarded_error(response: PeerResponse) -> MediaMgrError:
    """The instance a request was forwarded to refused it: the same error here (503 if unknown)."""
    body = response.body if isinstance(response.body, dict) else {}
    detail = str(body.get("detail") or body.get("error") or "refused by the instance that holds the mount")
    return _BY_STATUS.get(response.status, Unavailable)(detail)


class FleetRelays:
    """The ``RelayControl`` of http/relays.py for a fleet; ``async with`` runs the owner's pass."""

    def __init__(
        self, manager: RelayManager, store: RelayStore, mounts: LiveMountStore, fleet: Fleet, peers: Peers
    ) -> None:
        self.manager = manager
        self._store = store
        self._mounts = mounts
        self._fleet = fleet
        self._peers = peers
        self._lock = asyncio.Lock()  # one pass, add or remove at a time: nothing starts twice
        self._failed: dict[str, float] = {}  # relay id -> when its start failed here
        self._tasks = TaskSet("shout.fleet_relays", log)

    async def __aenter__(self) -> Self:
        self._fleet.on_gone(self._gone)
        self._fleet.on_declared_gone(self._declared_gone)
        self._tasks.spawn(self._passes(), name="relay owner pass")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._tasks.stop()  # the rows stay: another instance (or the next start) adopts them

    @property
    def me(self) -> str:
        return self._fleet.id

    # -- the API ------------------------------------------------------------------------------------

    async def add(
        self, *, mount: str | None, media_id: str | None, host: str, port: int, target_mount: str, user: str,
        password: str, local: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        if mount is not None and not local and self.manager.registry.get(mount) is None:
            holder = await self._mounts.holder(mount, self.me)
            if holder is not None:  # run it where the source is: no upstream between instances
                body = {"mount": mount, "target": {"host": host, "port": port, "mount": target_mount,
                                                   "user": user, "password": password}}  # fmt: skip
                with contextlib.suppress(PeerUnavailable):  # it is going away: run it here
                    response = await self._peers.call(holder.instance_id, "POST", "/v1/relays", json=body)
                    if response.status != 201:
                        raise forwarded_error(response)
                    return dict(response.body)
        async with self._lock:
            public = await self.manager.add(
                mount=mount, media_id=media_id, host=host, port=port, target_mount=target_mount, user=user,
                password=password,
            )  # fmt: skip
            row = RelayRow(
                id=public["id"], owner=self.me, mount=mount, media_id=media_id, host=host, port=port,
                target_mount=target_mount, user=user, password=password, created_at=datetime.now(UTC),
            )  # fmt: skip
            try:
                await self._store.add(row)
            except BaseException:
                await self.manager.remove(row.id)
                raise
        return {**public, "instance": self.me}

    async def list(self, *, local: bool = False) -> list[dict[str, Any]]:
        if local:
            return [{**p, "instance": self.me} for p in self.manager.list()]
        rows = await self._store.listing()
        live: dict[str, dict[str, Any]] = {p["id"]: p for p in self.manager.list()}
        for owner in {r.owner for r in rows} - {self.me}:
            with contextlib.suppress(PeerUnavailable):
                response = await self._peers.call(owner, "GET", "/v1/relays")
                if response.status == 200:
                    live.update({p["id"]: p for p in response.body.get("items", [])})
        return [self._public(r, live.get(r.id)) for r in rows]

    async def get(self, relay_id: str, *, local: bool = False) -> dict[str, Any]:
        if local:
            return {**self.manager.get(relay_id), "instance": self.me}
        row = await self._store.get(relay_id)
        if row is None:
            raise NotFound(f"no relay {relay_id}")
        live: dict[str, Any] | None = None
        if row.owner == self.me:
            with contextlib.suppress(NotFound):  # not started here yet: the next pass does
                live = self.manager.get(relay_id)
        else:
            with contextlib.suppress(PeerUnavailable):
                response = await self._peers.call(row.owner, "GET", f"/v1/relays/{relay_id}")
                if response.status == 200:
                    live = response.body
        return self._public(row, live)

    async def remove(self, relay_id: str, *, local: bool = False) -> None:
        if local:  # the row is already gone: the instance that deleted it tells us
            with contextlib.suppress(NotFound):
                async with self._lock:
                    await self.manager.remove(relay_id)
            return
        row = await self._store.remove(relay_id)
        if row is None:
            raise NotFound(f"no relay {relay_id}")
        if row.owner == self.me:
            async with self._lock:
                with contextlib.suppress(NotFound):
                    await self.manager.remove(relay_id)
        else:  # at once if it answers; else its own pass stops it, as the row is gone
            with contextlib.suppress(PeerUnavailable):
                await self._peers.call(row.owner, "DELETE", f"/v1/relays/{relay_id}")

    def _public(self, row: RelayRow, live: dict[str, Any] | None) -> dict[str, Any]:
        """The row as the listing shows it, with the owner's live state when it answered."""
        source: dict[str, Any] = (
            {"mount": row.mount} if row.mount else {"media_id": row.media_id, "loop": True}
        )
        base: dict[str, Any] = {
            "id": row.id, "source": source,
            "target": {"host": row.host, "port": row.port, "mount": row.target_mount, "user": row.user},
            "state": "unknown", "bytes_sent": 0, "queued_chunks": 0, "connects": 0, "last_error": None,
            "started_at": iso(row.created_at),
        }  # fmt: skip
        return {**base, **(live or {}), "instance": row.owner}

    # -- the owner's pass ---------------------------------------------------------------------------

    async def _passes(self) -> None:
        while True:
            try:
                await self.run_pass()
            except StoreUnavailable as exc:
                log.debug("relay pass failed", extra={"error": repr(exc)})
            except Exception:
                log.exception("relay pass failed")
            await asyncio.sleep(PASS_SECONDS)

    async def run_pass(self) -> None:
        """Adopt orphans, then run exactly what this instance owns, then re-attach live relays."""
        adopted = await self._store.adopt_orphans(self.me)
        if adopted:
            log.info("relays of a stopped instance adopted", extra={"relays": [r.id for r in adopted]})
        async with self._lock:
            owned = {r.id: r for r in await self._store.owned(self.me)}
            for relay_id in self.manager.ids() - owned.keys():
                log.info("relay no longer ours; stopping it", extra={"relay": relay_id})
                with contextlib.suppress(NotFound):
                    await self.manager.remove(relay_id)
            await self._start(r for r in owned.values() if r.id not in self.manager.ids())
        self.manager.reattach()

    async def _start(self, rows: Any) -> None:
        loop = asyncio.get_running_loop()
        for row in rows:
            failed = self._failed.get(row.id)
            if failed is not None and loop.time() - failed < RETRY_FAILED_SECONDS:
                continue
            try:
                await self.manager.add(mount=row.mount, media_id=row.media_id, host=row.host, port=row.port,
                                       target_mount=row.target_mount, user=row.user, password=row.password,
                                       relay_id=row.id)  # fmt: skip
                self._failed.pop(row.id, None)
                log.info("relay started by its owner", extra={"relay": row.id, "instance": self.me})
            except MediaMgrError as exc:
                self._failed[row.id] = loop.time()
                log.warning("relay could not start here", extra={"relay": row.id, "error": exc.detail})

    async def _gone(self, row: InstanceRow) -> None:
        """We declared ``row`` gone: its relays are ours now (only we got them back), start them."""
        taken = await self._store.take_over(row.id, self.me)
        if not taken:
            return
        log.warning("relays taken over from a gone instance",
                    extra={"gone_instance": row.id, "relays": [r.id for r in taken]})  # fmt: skip
        async with self._lock:
            await self._start(r for r in taken if r.id not in self.manager.ids())

    async def _declared_gone(self) -> None:
        """We were declared gone while cut off: a survivor runs our relays now; stop ours."""
        async with self._lock:
            for relay_id in self.manager.ids():
                with contextlib.suppress(NotFound):
                    await self.manager.remove(relay_id)
        log.warning("relays stopped: a survivor took them over while this instance was cut off")
