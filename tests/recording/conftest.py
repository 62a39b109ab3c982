"""What the recording tests share: a pool on the run's database, migrated by the ``server`` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest


@pytest.fixture
async def pool(database_url: str, server: object) -> AsyncIterator[asyncpg.Pool]:
    # ``server`` has applied the migrations to the run's database.
    p = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    yield p
    await p.close()
