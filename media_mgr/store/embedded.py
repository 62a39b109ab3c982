"""The embedded default: a real PostgreSQL from the ``pgserver`` package, under the data dir.

It is used through asyncpg exactly like an external server; only where the DSN comes from differs.
pgserver reference-counts the processes using one data directory and stops the server when the
last one exits, so ``media-mgr import`` can run beside ``media-mgr serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger("media_mgr.store")

DATABASE = "media_mgr"


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir / "pg"
        self._server: Any = None

    async def start(self) -> str:
        """Start (or join) the server and return an asyncpg DSN to the service's database."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.to_thread(self._start_blocking)
        admin_dsn: str = self._server.get_uri()
        await self._ensure_database(admin_dsn)
        dsn = admin_dsn.replace("/postgres?", f"/{DATABASE}?", 1)
        log.info("embedded postgresql ready", extra={"pgdata": str(self.pgdata)})
        return dsn

    def _start_blocking(self) -> Any:
        from pgserver import get_server  # type: ignore[attr-defined]  # only the default needs it

        return get_server(self.pgdata, cleanup_mode="stop")

    @staticmethod
    async def _ensure_database(admin_dsn: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
            if not exists:
                # Another process may create it first.
                with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                    await conn.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await conn.close()

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await asyncio.to_thread(server.cleanup)
