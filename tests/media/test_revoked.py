"""Revoked stream URLs known in memory (media/revoked.py): loaded once live, kept by notifications,
and asked of the database whenever the set may be incomplete."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from media_mgr.media.revoked import RevokedNonces
from media_mgr.store.revocations import Revocations

from servers import RunningServer


@pytest.fixture
async def revocations(database_url: str, server: RunningServer) -> AsyncIterator[Revocations]:
    # ``server`` has applied the migrations to the run's database.
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    yield Revocations(pool)
    await pool.close()


async def loaded(nonces: RevokedNonces) -> None:
    nonces.known(b"")  # starts the load
    async with asyncio.timeout(10):
        while not nonces.loaded:
            await asyncio.sleep(0.01)


async def test_unknown_until_live_and_loaded_then_answered_from_memory(revocations: Revocations) -> None:
    old, new, never = (secrets.token_bytes(8) for _ in range(3))
    await revocations.revoke(old, 2**31)
    nonces = RevokedNonces(revocations)
    assert nonces.known(old) is None  # not live: only the database knows
    nonces.reset(True)
    await loaded(nonces)
    assert nonces.known(old) is True and nonces.known(never) is False
    nonces.revoked(f"{new.hex()} {2**31}")  # what the notification of a revocation elsewhere says
    assert nonces.known(new) is True
    nonces.reset(False)
    assert nonces.known(old) is None


async def test_more_revocations_than_the_limit_are_left_to_the_database(revocations: Revocations) -> None:
    for _ in range(3):
        await revocations.revoke(secrets.token_bytes(8), 2**31)
    nonces = RevokedNonces(revocations, limit=2)
    nonces.reset(True)
    assert nonces.known(b"12345678") is None
    await asyncio.sleep(0.5)
    assert not nonces.loaded and nonces.known(b"12345678") is None
    nonces.reset(True)  # a new connection tries again
    nonces.revoked("not hex")
    assert nonces.known(b"12345678") is None
