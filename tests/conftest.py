"""Shared fixtures: a real PostgreSQL database per test run, real servers, real audio."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from servers import RunningServer, start_server

T = TypeVar("T")

def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end from sync code, even inside a running event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


LOCAL_PG = os.environ.get("MEDIA_MGR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _local_pg_reachable() -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(LOCAL_PG, timeout=3)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True

    return run_sync(probe())


@pytest.fixture(scope="session")
def pg_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's PostgreSQL when reachable, else a private one (initdb on a free port) for this run."""
    if _local_pg_reachable():
        yield LOCAL_PG
        return
    from private_services import PrivatePostgres

    with PrivatePostgres(tmp_path_factory.mktemp("pg")) as server:
        yield server.dsn


@pytest.fixture(scope="session")
def new_database(pg_admin_dsn: str) -> Iterator[Callable[[], str]]:
    """Make empty databases named for this run; all are dropped at the end."""
    made: list[str] = []

    def make() -> str:
        name = f"mmtest_{os.getpid()}_{secrets.token_hex(4)}"

        async def create() -> None:
            conn = await asyncpg.connect(pg_admin_dsn)
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()

        run_sync(create())
        made.append(name)
        base, _, query = pg_admin_dsn.partition("?")
        return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")

    yield make

    async def drop() -> None:
        conn = await asyncpg.connect(pg_admin_dsn)
        for name in made:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    run_sync(drop())


@pytest.fixture(scope="session")
def database_url(new_database: Callable[[], str]) -> str:
    """The run's shared database (tests keep apart by using their own account ids)."""
    return new_database()


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real ``media-mgr serve`` for the run: no admin token, so loopback clients are admins."""
    data = tmp_path_factory.mktemp("server")
    srv = start_server(
        {"MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(data),
         "MEDIA_MGR_LIMIT_UPLOAD_BYTES": str(8 * 1024 * 1024)},
        data / "server.log",
    )  # fmt: skip
    yield srv
    srv.stop()


@pytest.fixture
def account_id() -> str:
    return secrets.token_hex(16)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
def audio_dir(tmp_path: Path) -> Path:
    path = tmp_path / "audio"
    path.mkdir()
    return path
