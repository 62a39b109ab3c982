"""The store boundary: a database that is away or gone surfaces as ``StoreUnavailable``, chained
to the driver's error; anything else (a bad statement, a failing content source) passes unchanged."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import asyncpg
import pytest

from media_mgr.errors import Unavailable
from media_mgr.store.blobs import BlobStore
from media_mgr.store.errors import StoreUnavailable
from media_mgr.store.migrate import default_dir, migrate_database
from media_mgr.store.pool import Database, open_pool, reachable


@pytest.fixture
async def pool(database_url: str, server: object) -> AsyncIterator[asyncpg.Pool]:
    # ``server`` has applied the migrations to the run's database.
    p = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    yield p
    await p.close()


GONE = (
    asyncpg.PostgresConnectionError,  # ConnectionDoesNotExistError: the usual case
    asyncpg.exceptions.OperatorInterventionError,  # AdminShutdownError read before the next statement
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # the termination arrived while the statement was being sent
)
"""What the driver raises for a connection whose backend was terminated (depends on timing)."""


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_a_database_nobody_listens_for_is_store_unavailable() -> None:
    dsn = f"postgresql://nobody@127.0.0.1:{_closed_port()}/nothing"
    with pytest.raises(StoreUnavailable) as caught:
        await open_pool(dsn, min_size=1, max_size=1, command_timeout=2, connect_timeout=2)
    assert isinstance(caught.value.__cause__, OSError)
    assert isinstance(caught.value, Unavailable)  # what every edge answers as 503 / 1011 / media_error


async def test_migrating_a_database_nobody_listens_for_is_store_unavailable() -> None:
    dsn = f"postgresql://nobody@127.0.0.1:{_closed_port()}/nothing"
    with pytest.raises(StoreUnavailable) as caught:
        await migrate_database(dsn, default_dir(), connect_timeout=2)
    assert isinstance(caught.value.__cause__, OSError)


async def test_a_closed_pool_is_store_unavailable_from_a_store_module(pool: asyncpg.Pool) -> None:
    blobs = BlobStore(pool, chunk_bytes=4096)
    assert await reachable(pool, timeout=5)
    await pool.close()
    with pytest.raises(StoreUnavailable) as caught:
        await blobs.sweep(grace_seconds=60)
    assert isinstance(caught.value.__cause__, asyncpg.InterfaceError)
    assert not await reachable(pool, timeout=5)


async def test_a_terminated_backend_is_store_unavailable(pool: asyncpg.Pool, database_url: str) -> None:
    db = Database(pool)
    other = await asyncpg.connect(database_url)
    try:
        async with db.acquire() as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            assert await other.fetchval("SELECT pg_terminate_backend($1)", pid)
            with pytest.raises(StoreUnavailable) as caught:
                await conn.fetchval("SELECT 1")
    finally:
        await other.close()
    cause = caught.value.__cause__
    assert isinstance(cause, GONE), cause
    assert await db.fetchval("SELECT 1") == 1  # the pool replaces the dead connection


async def test_a_terminated_backend_inside_a_transaction_is_store_unavailable(
    pool: asyncpg.Pool, database_url: str
) -> None:
    db = Database(pool)
    other = await asyncpg.connect(database_url)

    async def cut_off_mid_transaction() -> None:
        async with db.transaction() as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            await other.execute("SELECT pg_terminate_backend($1)", pid)
            await conn.execute("SELECT 1")

    try:
        with pytest.raises(StoreUnavailable) as caught:
            await cut_off_mid_transaction()
    finally:
        await other.close()
    assert isinstance(caught.value.__cause__, GONE)


async def test_a_bad_statement_is_not_store_unavailable(pool: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.DivisionByZeroError):
        await Database(pool).fetchval("SELECT 1 / 0")


async def test_a_failing_content_source_keeps_its_own_error(pool: asyncpg.Pool) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 10
        raise OSError("the scratch file went away")

    blobs = BlobStore(pool, chunk_bytes=4)
    with pytest.raises(OSError, match="scratch file") as caught:
        async with Database(pool).transaction() as conn:
            await blobs.write(conn, broken())
    assert not isinstance(caught.value, StoreUnavailable)
