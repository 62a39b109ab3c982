"""The asyncpg pool, and the one place where a driver failure becomes :class:`StoreUnavailable`.

Every store module talks to PostgreSQL through :class:`Database` (a pool) or the
:class:`Connection` it lends, never through asyncpg directly: each call translates the driver's
"database slow, away or restarting" errors into ``StoreUnavailable`` chained to the original, so no
asyncpg class is visible above the store. Only the driver call is guarded, not the caller's code
around it: an ``OSError`` from a file being copied into a blob stays an ``OSError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from media_mgr.store.errors import StoreUnavailable
from media_mgr.store.outage import OUTAGE, quiet_pool_retries

DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # cannot connect, connection reset
    TimeoutError,  # command_timeout, connect timeout
    asyncpg.InterfaceError,  # the connection or the pool is closed
    asyncpg.PostgresConnectionError,  # SQLSTATE 08, ConnectionDoesNotExistError: connection lost
    asyncpg.exceptions.OperatorInterventionError,  # 57: shutting down, starting up, terminated
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, disk full
)
"""What the driver raises when the database is slow, away or restarting: worth a retry.
Anything else (a constraint, a bad statement) is a bug or a conflict and passes unchanged."""

Record = asyncpg.Record
Pool = asyncpg.Pool  # what open_pool returns: an opaque handle above the store


@contextlib.contextmanager
def driver_errors_as_unavailable(
    conn: asyncpg.Connection | PoolConnectionProxy | None = None,
) -> Iterator[None]:
    """Around driver calls only: their transient failures leave as ``StoreUnavailable``.

    With ``conn``, any driver error on a connection that turns out closed counts too: a backend
    terminated while a statement is being sent can surface as ``InternalClientError``.
    """
    try:
        yield
    except DRIVER_ERRORS as exc:
        OUTAGE.failed(exc)
        raise StoreUnavailable(f"the database is unavailable ({type(exc).__name__})") from exc
    except (asyncpg.PostgresError, asyncpg.InternalClientError) as exc:
        if conn is None or not conn.is_closed():
            raise
        OUTAGE.failed(exc)
        raise StoreUnavailable(f"the database connection was lost ({type(exc).__name__})") from exc
    OUTAGE.ok()


class _Queries:
    """The four query calls, on a pool (one statement, autocommit) or on one connection."""

    def __init__(self, target: asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy) -> None:
        self._target = target
        self._conn = None if isinstance(target, asyncpg.Pool) else target

    async def execute(self, sql: str, *args: Any) -> str:
        with driver_errors_as_unavailable(self._conn):
            status: str = await self._target.execute(sql, *args)
            return status

    async def fetch(self, sql: str, *args: Any) -> list[Record]:
        with driver_errors_as_unavailable(self._conn):
            return await self._target.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Record | None:
        with driver_errors_as_unavailable(self._conn):
            return await self._target.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        with driver_errors_as_unavailable(self._conn):
            return await self._target.fetchval(sql, *args)


class Connection(_Queries):
    """One connection lent by :meth:`Database.acquire` (or a transaction's)."""

    def __init__(self, raw: asyncpg.Connection | PoolConnectionProxy) -> None:
        super().__init__(raw)
        self._raw = raw

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Commit when the block ends, roll back when it raises (the block's error wins)."""
        tx = self._raw.transaction()
        with driver_errors_as_unavailable(self._raw):
            await tx.start()
        try:
            yield
        except BaseException:
            with contextlib.suppress(*DRIVER_ERRORS):  # the connection may be gone: nothing to undo
                await tx.rollback()
            raise
        with driver_errors_as_unavailable(self._raw):
            await tx.commit()


class Database(_Queries):
    """The pool as the store modules see it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self._pool = pool

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Connection]:
        """A connection for several statements; given back even when the block raises."""
        with driver_errors_as_unavailable():
            raw = await self._pool.acquire()
        try:
            yield Connection(raw)
        except BaseException:  # keep the block's error; the pool drops a connection it cannot reset
            with contextlib.suppress(*DRIVER_ERRORS):
                await self._pool.release(raw)
            raise
        with driver_errors_as_unavailable():
            await self._pool.release(raw)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A connection inside one transaction: everything in the block commits, or nothing."""
        async with self.acquire() as conn, conn.transaction():
            yield conn


async def open_pool(
    dsn: str,
    *,
    min_size: int,
    max_size: int,
    command_timeout: float,
    connect_timeout: float,
) -> asyncpg.Pool:
    """Open a pool; a command that hangs longer than ``command_timeout`` fails instead of waiting."""
    quiet_pool_retries()
    with driver_errors_as_unavailable():
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            command_timeout=command_timeout,
            timeout=connect_timeout,
            server_settings={"application_name": "media-mgr"},
        )
    assert pool is not None
    return pool


async def reachable(pool: asyncpg.Pool, timeout: float) -> bool:
    """Whether the database answers a trivial query within ``timeout`` (readiness checks)."""
    not_ready: tuple[type[BaseException], ...] = (*DRIVER_ERRORS, asyncpg.PostgresError)
    try:
        await pool.fetchval("SELECT 1", timeout=timeout)
    except not_ready:
        return False
    return True
