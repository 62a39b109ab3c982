"""Content in chunks: written from an async source, read back as an async iterator.

Neither direction ever holds more than one chunk of a blob. Reads take one short query per
chunk and no transaction, so a slow listener holds no connection while it is not reading.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from media_mgr.media.models import BlobInfo

Connection = asyncpg.Connection | PoolConnectionProxy


class BlobStore:
    def __init__(self, pool: asyncpg.Pool, chunk_bytes: int) -> None:
        self._pool = pool
        self.chunk_bytes = chunk_bytes

    async def write(self, conn: Connection, source: AsyncIterable[bytes]) -> BlobInfo:
        """Write a whole blob inside the caller's transaction, re-cut into ``chunk_bytes`` rows."""
        blob_id: int = await conn.fetchval("INSERT INTO blobs DEFAULT VALUES RETURNING id")
        digest = hashlib.sha256()
        pending = bytearray()
        pos = 0
        insert = await conn.prepare("INSERT INTO blob_chunks (blob_id, pos, data) VALUES ($1, $2, $3)")
        async for piece in source:
            digest.update(piece)
            pending += piece
            while len(pending) >= self.chunk_bytes:
                chunk = bytes(pending[: self.chunk_bytes])
                del pending[: self.chunk_bytes]
                await insert.fetch(blob_id, pos, chunk)
                pos += len(chunk)
        if pending:
            await insert.fetch(blob_id, pos, bytes(pending))
            pos += len(pending)
        sha = digest.hexdigest()
        await conn.execute(
            "UPDATE blobs SET size = $2, sha256 = $3, complete = true WHERE id = $1", blob_id, pos, sha
        )
        return BlobInfo(id=blob_id, size=pos, sha256=sha)

    async def read(self, blob_id: int, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Yield bytes ``start`` .. ``end`` (exclusive; None = to the end) one chunk at a time."""
        if end is not None and end <= start:
            return
        row = await self._pool.fetchrow(
            "SELECT pos, data FROM blob_chunks WHERE blob_id = $1 AND pos <= $2 ORDER BY pos DESC LIMIT 1",
            blob_id,
            start,
        )
        while row is not None:
            pos: int = row["pos"]
            data: bytes = row["data"]
            lo = max(start - pos, 0)
            hi = len(data) if end is None else min(len(data), end - pos)
            if hi > lo:
                yield data[lo:hi] if (lo, hi) != (0, len(data)) else data
            next_pos = pos + len(data)
            if end is not None and next_pos >= end:
                return
            del row, data
            row = await self._pool.fetchrow(
                "SELECT pos, data FROM blob_chunks WHERE blob_id = $1 AND pos = $2", blob_id, next_pos
            )

    async def sweep(self, grace_seconds: int) -> int:
        """Delete blobs orphaned longer than the grace period; returns how many went."""
        result: str = await self._pool.execute(
            "DELETE FROM blobs WHERE orphaned_at < now() - make_interval(secs => $1)", float(grace_seconds)
        )
        return int(result.split()[-1])
