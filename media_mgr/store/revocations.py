"""Stream URLs revoked before they expire, remembered by their token's nonce."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from media_mgr.store.pool import Database


class Revocations:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = Database(pool)

    async def revoke(self, nonce: bytes, expires: int) -> None:
        await self._pool.execute(
            "INSERT INTO revoked_tokens (nonce, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            nonce,
            datetime.fromtimestamp(expires, UTC),
        )

    async def purge(self) -> int:
        """Forget revocations of tokens that have expired anyway."""
        result: str = await self._pool.execute("DELETE FROM revoked_tokens WHERE expires_at < now()")
        return int(result.split()[-1])
