"""The asyncpg pool every store module borrows connections from."""

from __future__ import annotations

import asyncpg


async def open_pool(
    dsn: str,
    *,
    min_size: int,
    max_size: int,
    command_timeout: float,
    connect_timeout: float,
) -> asyncpg.Pool:
    """Open a pool; a command that hangs longer than ``command_timeout`` fails instead of waiting."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        timeout=connect_timeout,
        server_settings={"application_name": "media-mgr"},
    )
    assert pool is not None
    return pool
