"""This instance's liveness as PostgreSQL sees it: a session advisory lock, held while we run.

A recording row names its writer by this lock's key (``recordings.owner``). PostgreSQL drops the
lock when the writer's process dies (its connection closes), so another instance can tell "its
writer crashed" from "its writer is alive" without guessing from clocks.

A database restart drops every session lock too, of live instances as well as dead ones. So the
key is chosen once and never changes (the rows name it), and :meth:`OwnerLock.keep` watches the
lock's connection and takes the same key again as soon as the database answers (within
``WATCH_SECONDS`` plus a connect). A survivor probing the key at that moment only delays it: the
watchdog keeps trying the same key. What keeps a survivor from closing our recordings in that
window is the recovery rule (recordings.py ``stale_owners``): the heartbeat is only "stale" when it
is older than the grace counted from the later of the last heartbeat and the database's start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

import asyncpg

from media_mgr.store.errors import StoreUnavailable
from media_mgr.store.pool import driver_errors_as_unavailable

LOCK_NAMESPACE = 0x72656331  # "rec1": two-key advisory locks (namespace, owner)
WATCH_SECONDS = 0.25  # how often the watchdog looks at the lock's connection
CONTESTED_WARNING_SECONDS = 5.0  # the key held elsewhere this long after a restart: say so once

log = logging.getLogger("media_mgr.store")


class OwnerLock:
    """The lock, held on one connection of the pool; ``keep`` (a watchdog task) takes it again
    on a fresh connection, under the same key, whenever that connection is lost."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self._chosen = False  # once a row may name the key, it never changes
        self.key = secrets.randbelow(2**31 - 2) + 1

    @property
    def held(self) -> bool:
        """Whether the lock's connection is open (so PostgreSQL holds the lock for us). When the
        database drops it, the pool takes the connection back and its proxy raises on any call."""
        if self._conn is None:
            return False
        try:
            return not self._conn.is_closed()
        except asyncpg.InterfaceError:  # released back to the pool: lost
            return False

    async def ensure(self) -> bool:
        """Hold the lock (again); False while another session holds our key (a survivor's probe),
        ``StoreUnavailable`` when the database cannot be reached."""
        async with self._lock:
            if self.held:
                return True
            await self._drop()
            with driver_errors_as_unavailable():
                conn = await self._pool.acquire()
            try:
                with driver_errors_as_unavailable(conn):
                    while not await conn.fetchval(
                        "SELECT pg_try_advisory_lock($1, $2)", LOCK_NAMESPACE, self.key
                    ):
                        if self._chosen:  # rows name this key: wait for the probe to let go
                            await self._pool.release(conn)
                            return False
                        self.key = secrets.randbelow(2**31 - 2) + 1  # taken by a live instance: pick another
            except BaseException:
                with contextlib.suppress(Exception):
                    await self._pool.release(conn)
                raise
            self._chosen = True
            self._conn = conn
            return True

    async def keep(self) -> None:
        """The watchdog: run as a task for as long as the instance lives (the recorder's ticker
        set). One line when the lock is lost and one when it is held again, not one per try."""
        lost_at: float | None = None
        warned = False
        loop = asyncio.get_running_loop()
        while True:
            if not self.held:
                if lost_at is None:
                    lost_at = loop.time()
                    if self._chosen:  # info: the database outage itself is the warning (outage.py)
                        log.info("owner lock lost (database connection closed); taking it again",
                                 extra={"owner": self.key})  # fmt: skip
                contested = False
                try:
                    got = await self.ensure()
                    contested = not got
                except StoreUnavailable:
                    got = False
                except Exception as exc:  # a broken half-open connection: never let the watchdog die
                    log.debug("owner lock not taken", extra={"error": repr(exc)})
                    got = False
                if got:
                    log.info("owner lock held again", extra={"owner": self.key,
                             "after_s": round(loop.time() - lost_at, 3)})  # fmt: skip
                    lost_at, warned = None, False
                elif contested and not warned and loop.time() - lost_at > CONTESTED_WARNING_SECONDS:
                    log.warning("owner lock held by another session; retrying", extra={"owner": self.key})
                    warned = True
            await asyncio.sleep(WATCH_SECONDS)

    async def holder_is_gone(self, owner: int) -> bool:
        """True, holding ``owner``'s lock until ``forget``, if no live instance holds it."""
        async with self._lock:
            if not self.held:
                return False
            with driver_errors_as_unavailable(self._conn):
                got: bool = await self._conn.fetchval(
                    "SELECT pg_try_advisory_lock($1, $2)", LOCK_NAMESPACE, owner
                )
            return got

    async def forget(self, owner: int) -> None:
        async with self._lock:
            if self._conn is not None:
                with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    await self._conn.execute("SELECT pg_advisory_unlock($1, $2)", LOCK_NAMESPACE, owner)

    async def release(self) -> None:
        async with self._lock:
            await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await conn.execute("SELECT pg_advisory_unlock_all()")
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await self._pool.release(conn)
