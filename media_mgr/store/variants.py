"""Transcoded variants of a revision: find one, or write one under a lock so it is made once."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

import asyncpg

from media_mgr.store import blobs as blob_rows
from media_mgr.store.blobs import BlobStore
from media_mgr.store.pool import Connection, Database


@dataclass(frozen=True)
class VariantKey:
    media_id: str
    revision: int
    format: str
    rate: int

    def lock_id(self) -> int:
        """A stable 63-bit advisory lock id for this key (shared by every instance)."""
        text = f"variant:{self.media_id}:{self.revision}:{self.format}:{self.rate}".encode()
        return (zlib.crc32(text) << 31 | zlib.adler32(text)) & 0x7FFF_FFFF_FFFF_FFFF


@dataclass(frozen=True)
class Variant:
    blob_id: int
    size: int


class VariantStore:
    def __init__(self, pool: asyncpg.Pool, blobs: BlobStore) -> None:
        self._pool = Database(pool)
        self.blobs = blobs

    async def get(self, key: VariantKey) -> Variant | None:
        row = await self._pool.fetchrow(
            """SELECT blob_id, size FROM media_variants
                WHERE media_id = $1 AND revision = $2 AND format = $3 AND rate = $4""",
            key.media_id,
            key.revision,
            key.format,
            key.rate,
        )
        return Variant(row["blob_id"], row["size"]) if row else None

    @contextlib.asynccontextmanager
    async def making(self, key: VariantKey) -> AsyncIterator[VariantWriter]:
        """Hold the key's lock across instances; inside, check ``existing`` before transcoding."""
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", key.lock_id())
            try:
                yield VariantWriter(conn, key, self.blobs, await self.get(key))
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", key.lock_id())


class VariantWriter:
    def __init__(self, conn: Connection, key: VariantKey, blobs: BlobStore, existing: Variant | None) -> None:
        self._conn = conn
        self.key = key
        self._blobs = blobs
        self.existing = existing

    async def write(self, content: AsyncIterable[bytes]) -> Variant:
        conn = self._conn
        async with conn.transaction():
            current = await conn.fetchval(
                "SELECT revision FROM media WHERE id = $1 FOR SHARE", self.key.media_id
            )
            blob = await self._blobs.write(conn, content)
            if current != self.key.revision:
                # Replaced or deleted while we transcoded: keep nothing for a revision nobody has.
                await blob_rows.orphan(conn, [blob.id])
                return Variant(blob.id, blob.size)
            await conn.execute(
                """INSERT INTO media_variants (media_id, revision, format, rate, blob_id, size)
                   VALUES ($1, $2, $3, $4, $5, $6)""",
                self.key.media_id,
                self.key.revision,
                self.key.format,
                self.key.rate,
                blob.id,
                blob.size,
            )
        return Variant(blob.id, blob.size)


async def drop_all(conn: Connection, media_id: str) -> None:
    """Forget every variant of a media item (its content changed or it went); their blobs are orphaned."""
    rows = await conn.fetch("DELETE FROM media_variants WHERE media_id = $1 RETURNING blob_id", media_id)
    await blob_rows.orphan(conn, [r["blob_id"] for r in rows])
