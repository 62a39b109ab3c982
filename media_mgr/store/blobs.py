"""Content in chunks: written from an async source, read back as an async iterator.

Neither direction ever holds more than one chunk of a blob. Reads take one short query per
chunk and no transaction, so a slow listener holds no connection while it is not reading.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

import asyncpg

from media_mgr.store.pool import Connection, Database


@dataclass(frozen=True)
class BlobInfo:
    """A whole blob as written: what a media record or a recording row refers to."""

    id: int
    size: int
    sha256: str


class BlobStore:
    def __init__(self, pool: asyncpg.Pool, chunk_bytes: int) -> None:
        self._pool = Database(pool)
        self.chunk_bytes = chunk_bytes

    async def write(self, conn: Connection, source: AsyncIterable[bytes]) -> BlobInfo:
        """Write a whole blob inside the caller's transaction, re-cut into ``chunk_bytes`` rows."""
        blob_id: int = await conn.fetchval("INSERT INTO blobs DEFAULT VALUES RETURNING id")
        digest = hashlib.sha256()
        pending = bytearray()
        pos = 0
        insert = "INSERT INTO blob_chunks (blob_id, pos, data) VALUES ($1, $2, $3)"  # prepared once, cached
        async for piece in source:
            digest.update(piece)
            pending += piece
            while len(pending) >= self.chunk_bytes:
                chunk = bytes(pending[: self.chunk_bytes])
                del pending[: self.chunk_bytes]
                await conn.execute(insert, blob_id, pos, chunk)
                pos += len(chunk)
        if pending:
            await conn.execute(insert, blob_id, pos, bytes(pending))
            pos += len(pending)
        sha = digest.hexdigest()
        await mark_complete(conn, blob_id, pos, sha)
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

    async def rewrite_start(self, blob_id: int, header: bytes) -> None:
        """Overwrite the first bytes of a blob (a WAV header whose sizes are now known)."""
        await self._pool.execute(
            """UPDATE blob_chunks SET data = overlay(data PLACING $2::bytea FROM 1 FOR length($2::bytea))
                WHERE blob_id = $1 AND pos = 0""",
            blob_id,
            header,
        )

    async def sweep(self, grace_seconds: int) -> int:
        """Delete blobs orphaned longer than the grace period; returns how many went."""
        result: str = await self._pool.execute(
            "DELETE FROM blobs WHERE orphaned_at < now() - make_interval(secs => $1)", float(grace_seconds)
        )
        return int(result.split()[-1])


# -- growing blobs (recordings), each call inside the caller's transaction --------------------------


async def open_blob(conn: Connection, start: bytes = b"") -> int:
    """A new, still incomplete blob holding ``start`` (e.g. a WAV header); returns its id."""
    blob_id: int = await conn.fetchval("INSERT INTO blobs DEFAULT VALUES RETURNING id")
    if start:
        await conn.execute("INSERT INTO blob_chunks (blob_id, pos, data) VALUES ($1, 0, $2)", blob_id, start)
    return blob_id


async def append_at(conn: Connection, blob_id: int, pos: int, data: bytes) -> None:
    """Put ``data`` at byte ``pos``; idempotent, so retrying after an ambiguous commit (the
    connection died before the answer came back) never duplicates nor loses bytes."""
    done = await conn.fetchval(
        """INSERT INTO blob_chunks (blob_id, pos, data) VALUES ($1, $2, $3)
           ON CONFLICT (blob_id, pos) DO NOTHING RETURNING length(data)""",
        blob_id,
        pos,
        data,
    )
    if done is None:  # an earlier try committed without us hearing back: add only the rest
        have: int = await conn.fetchval(
            "SELECT length(data) FROM blob_chunks WHERE blob_id = $1 AND pos = $2", blob_id, pos
        )
        if have < len(data):
            await conn.execute(
                "INSERT INTO blob_chunks (blob_id, pos, data) VALUES ($1, $2, $3)",
                blob_id,
                pos + have,
                data[have:],
            )


async def append_many(conn: Connection, items: list[tuple[int, int, bytes]]) -> None:
    """``append_at`` for several (blob_id, pos, data) in one statement; a chunk already there (an
    earlier try committed unheard) goes the careful way of ``append_at``."""
    if not items:
        return
    rows = await conn.fetch(
        """INSERT INTO blob_chunks (blob_id, pos, data)
           SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])
           ON CONFLICT (blob_id, pos) DO NOTHING RETURNING blob_id, pos""",
        [i[0] for i in items],
        [i[1] for i in items],
        [i[2] for i in items],
    )
    done = {(row["blob_id"], row["pos"]) for row in rows}
    for blob_id, pos, data in items:
        if (blob_id, pos) not in done:
            await append_at(conn, blob_id, pos, data)


async def mark_complete(conn: Connection, blob_id: int, size: int, sha256: str) -> None:
    await conn.execute(
        "UPDATE blobs SET size = $2, sha256 = $3, complete = true WHERE id = $1", blob_id, size, sha256
    )


async def orphan(conn: Connection, blob_ids: list[int]) -> None:
    """Hand blobs nobody refers to any more to the sweeper (after the grace period)."""
    if blob_ids:
        await conn.execute("UPDATE blobs SET orphaned_at = now() WHERE id = ANY($1::bigint[])", blob_ids)
