"""Chunked content: any byte range reads back exactly, one chunk at a time."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import asyncpg
import pytest

from media_mgr.store.blobs import BlobStore
from media_mgr.store.pool import Database


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.fixture
async def pool(database_url: str, server: object) -> AsyncIterator[asyncpg.Pool]:
    # ``server`` has applied the migrations to the run's database.
    p = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    yield p
    await p.close()


async def test_blob_is_recut_into_fixed_chunks_and_reads_back(pool: asyncpg.Pool) -> None:
    store = BlobStore(pool, chunk_bytes=4096)
    data = os.urandom(4096 * 5 + 123)
    async with Database(pool).transaction() as conn:
        blob = await store.write(conn, _pieces(data, 1000))  # odd-sized input pieces
    assert blob.size == len(data)
    sizes = [r["n"] for r in await pool.fetch(
        "SELECT length(data) AS n FROM blob_chunks WHERE blob_id = $1 ORDER BY pos", blob.id)]  # fmt: skip
    assert sizes == [4096] * 5 + [123]
    assert b"".join([c async for c in store.read(blob.id)]) == data
    for start, end in [(0, 1), (4095, 4097), (100, 9000), (4096 * 5, None), (len(data) - 1, None), (5, 5)]:
        got = b"".join([c async for c in store.read(blob.id, start, end)])
        assert got == data[start:end], (start, end)


async def test_no_chunk_is_larger_than_the_configured_size(pool: asyncpg.Pool) -> None:
    store = BlobStore(pool, chunk_bytes=8192)
    async with Database(pool).transaction() as conn:
        blob = await store.write(conn, _pieces(os.urandom(100_000), 50_000))
    pieces = [c async for c in store.read(blob.id)]
    assert max(len(p) for p in pieces) <= 8192


async def test_sweep_deletes_only_orphans_past_the_grace(pool: asyncpg.Pool) -> None:
    store = BlobStore(pool, chunk_bytes=4096)
    async with Database(pool).transaction() as conn:
        old = await store.write(conn, _pieces(b"x" * 10, 10))
        fresh = await store.write(conn, _pieces(b"y" * 10, 10))
        kept = await store.write(conn, _pieces(b"z" * 10, 10))
    await pool.execute("UPDATE blobs SET orphaned_at = now() - interval '1 hour' WHERE id = $1", old.id)
    await pool.execute("UPDATE blobs SET orphaned_at = now() WHERE id = $1", fresh.id)
    await store.sweep(grace_seconds=600)
    ids = {
        r["id"]
        for r in await pool.fetch("SELECT id FROM blobs WHERE id = ANY($1)", [old.id, fresh.id, kept.id])
    }
    assert ids == {fresh.id, kept.id}
    assert await pool.fetchval("SELECT count(*) FROM blob_chunks WHERE blob_id = $1", old.id) == 0
