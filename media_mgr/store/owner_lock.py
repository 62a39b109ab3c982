"""This instance's liveness as PostgreSQL sees it: a session advisory lock, held while we run.

A recording row names its writer by this lock's key (``recordings.owner``). PostgreSQL drops the
lock when the writer's process dies (its connection closes), so another instance can tell "its
writer crashed" from "its writer is alive" without guessing from clocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

import asyncpg

from media_mgr.store.pool import driver_errors_as_unavailable

LOCK_NAMESPACE = 0x72656331  # "rec1": two-key advisory locks (namespace, owner)


class OwnerLock:
    """The lock, held on one connection of the pool; after a database restart ``ensure`` takes it
    again on a fresh connection."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self.key = secrets.randbelow(2**31 - 2) + 1

    async def ensure(self) -> None:
        """Hold the lock (again); ``StoreUnavailable`` when the database cannot be reached."""
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return
            await self._drop()
            with driver_errors_as_unavailable():
                conn = await self._pool.acquire()
                try:
                    while not await conn.fetchval(
                        "SELECT pg_try_advisory_lock($1, $2)", LOCK_NAMESPACE, self.key
                    ):
                        self.key = secrets.randbelow(2**31 - 2) + 1  # taken by a live instance: pick another
                except BaseException:
                    await self._pool.release(conn)
                    raise
            self._conn = conn

    async def holder_is_gone(self, owner: int) -> bool:
        """True, holding ``owner``'s lock until ``forget``, if no live instance holds it."""
        async with self._lock:
            if self._conn is None:
                return False
            with driver_errors_as_unavailable():
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
            if not conn.is_closed():
                await conn.execute("SELECT pg_advisory_unlock_all()")
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await self._pool.release(conn)
