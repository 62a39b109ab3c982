"""A recording's bytes as PostgreSQL holds them: its blob's chunks in order."""

from __future__ import annotations

import asyncpg


async def stored(pool: asyncpg.Pool, recording_id: str) -> bytes:
    rows = await pool.fetch(
        """SELECT c.data FROM blob_chunks c JOIN recordings r ON r.blob_id = c.blob_id
            WHERE r.id = $1 ORDER BY c.pos""", recording_id)  # fmt: skip
    return b"".join(r["data"] for r in rows)
