"""Small shared values every instance must agree on (e.g. the URL signing secret)."""

from __future__ import annotations

import asyncpg

from media_mgr.store.pool import Database


class SharedSettings:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = Database(pool)

    async def get(self, key: str) -> str | None:
        value: str | None = await self._pool.fetchval(
            "SELECT value FROM service_settings WHERE key = $1", key
        )
        return value

    async def put_once(self, key: str, value: str) -> str:
        """Store ``value`` unless another instance got there first; return the value that won."""
        won: str = await self._pool.fetchval(
            """INSERT INTO service_settings (key, value) VALUES ($1, $2)
               ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key RETURNING value""",
            key,
            value,
        )
        return won
