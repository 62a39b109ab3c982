"""The TTS cache table: which media item holds the speech for a key, and until when.

The only SQL on ``tts_cache``. Instances agree through it: one synthesises a key while holding a
session advisory lock on it (``exclusive``), the others wait on that lock and then find the entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from media_mgr.store.pool import Database

LOCK_NAMESPACE = 0x74747331  # "tts1": two-key advisory locks (namespace, hash of the cache key)


@dataclass(frozen=True)
class TtsEntry:
    """What a cache row says about the speech it stands for."""

    key: str
    engine: str
    voice: str
    language: str
    text: str


def lock_id(key: str) -> int:
    """The second advisory-lock key for a cache key; a collision only serialises two texts."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big", signed=True)


class TtsCacheStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = Database(pool)

    async def touch(self, key: str, lifetime: float) -> str | None:
        """The media id of a live entry, its life pushed to ``lifetime`` seconds from now; None on a miss."""
        media_id: str | None = await self._pool.fetchval(
            """UPDATE tts_cache SET expires_at = greatest(expires_at, now() + make_interval(secs => $2))
                WHERE key = $1 AND expires_at > now() RETURNING media_id""",
            key,
            float(lifetime),
        )
        return media_id

    @asynccontextmanager
    async def exclusive(self, key: str) -> AsyncIterator[None]:
        """Hold the key's lock (waiting for another instance that holds it) on one pooled connection."""
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1, $2)", LOCK_NAMESPACE, lock_id(key))
            try:
                yield
            finally:
                # If this fails the connection is broken, and its session, with the lock, ends with it.
                await conn.execute("SELECT pg_advisory_unlock($1, $2)", LOCK_NAMESPACE, lock_id(key))

    async def claim(self, entry: TtsEntry, media_id: str, lifetime: float) -> str | None:
        """Point ``entry.key`` at ``media_id`` (the media comes next); returns the media id it replaced."""
        async with self._pool.acquire() as conn, conn.transaction():
            old: str | None = await conn.fetchval(
                "SELECT media_id FROM tts_cache WHERE key = $1 FOR UPDATE", entry.key
            )
            await conn.execute(
                """INSERT INTO tts_cache (key, engine, voice, language, text, media_id, expires_at)
                   VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))
                   ON CONFLICT (key) DO UPDATE SET media_id = excluded.media_id, created_at = now(),
                          expires_at = excluded.expires_at""",
                entry.key,
                entry.engine,
                entry.voice,
                entry.language,
                entry.text,
                media_id,
                float(lifetime),
            )
        return old

    async def forget(self, key: str, media_id: str) -> None:
        """Drop the entry if it still points at ``media_id`` (its synthesis failed)."""
        await self._pool.execute("DELETE FROM tts_cache WHERE key = $1 AND media_id = $2", key, media_id)

    async def expired_keys(self, limit: int) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT key FROM tts_cache WHERE expires_at <= now() ORDER BY expires_at LIMIT $1", limit
        )
        return [row["key"] for row in rows]

    @asynccontextmanager
    async def expiring(self, key: str) -> AsyncIterator[str | None]:
        """Yield the media id of ``key`` if it is still expired, and delete the entry on a clean exit.

        The row stays locked meanwhile, so a request that would revive the entry waits, then misses.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            media_id: str | None = await conn.fetchval(
                "SELECT media_id FROM tts_cache WHERE key = $1 AND expires_at <= now() FOR UPDATE", key
            )
            yield media_id
            if media_id is not None:
                await conn.execute("DELETE FROM tts_cache WHERE key = $1", key)
