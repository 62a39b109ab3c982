"""Stream URLs revoked before they expire, remembered by their token's nonce.

Each revocation is announced (``NOTIFY media_mgr_revoked, '<nonce hex> <expires>'``) in the same
statement's transaction, so every instance that keeps the revoked nonces in memory hears it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from media_mgr.store.notify import notify
from media_mgr.store.pool import Database

REVOKED_CHANNEL = "media_mgr_revoked"


class Revocations:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = Database(pool)

    async def revoke(self, nonce: bytes, expires: int) -> None:
        async with self._pool.transaction() as conn:
            await conn.execute(
                "INSERT INTO revoked_tokens (nonce, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                nonce,
                datetime.fromtimestamp(expires, UTC),
            )
            await notify(conn, REVOKED_CHANNEL, f"{nonce.hex()} {expires}")

    async def active(self, limit: int) -> list[tuple[bytes, int]] | None:
        """Every revocation not yet expired as (nonce, expires); None if there are more than ``limit``."""
        rows = await self._pool.fetch(
            """SELECT nonce, extract(epoch FROM expires_at)::bigint AS expires FROM revoked_tokens
                WHERE expires_at > now() LIMIT $1""",
            limit + 1,
        )
        if len(rows) > limit:
            return None
        return [(bytes(r["nonce"]), int(r["expires"])) for r in rows]

    async def purge(self) -> int:
        """Forget revocations of tokens that have expired anyway."""
        result: str = await self._pool.execute("DELETE FROM revoked_tokens WHERE expires_at < now()")
        return int(result.split()[-1])
