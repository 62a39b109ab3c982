"""Apply ``migrations/NNN_name.sql`` in order, each once, each in its own transaction.

An advisory lock serialises instances that start at the same time on one database: the second
waits, then finds everything applied.
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from media_mgr.store.pool import driver_errors_as_unavailable

log = logging.getLogger("media_mgr.store")

LOCK_KEY = 0x6D6D_6772  # "mmgr"
_NAME = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def default_dir() -> Path:
    """The source tree's ``migrations/``, else the copy a wheel installs under share/."""
    for candidate in (
        Path(__file__).resolve().parents[2] / "migrations",
        Path(sys.prefix) / "share" / "media-mgr" / "migrations",
    ):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("no migrations directory found (set MEDIA_MGR_MIGRATIONS_DIR)")


def discover(directory: Path) -> list[Migration]:
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name!r} is not named NNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations share version {version}: {found[version].name}, {path.name}")
        found[version] = Migration(version, path.name, path)
    return [found[v] for v in sorted(found)]


async def apply(conn: asyncpg.Connection, directory: Path) -> list[str]:
    """Apply what is missing; returns the names applied now."""
    migrations = discover(directory)
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in migrations:
            if migration.version in done:
                continue
            sql = migration.path.read_text(encoding="utf-8")
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            log.info("migration applied", extra={"migration": migration.name})
            applied_now.append(migration.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    return applied_now


async def migrate_database(dsn: str, directory: Path, *, connect_timeout: float) -> list[str]:
    """Connect, apply what is missing, disconnect; ``StoreUnavailable`` if the database is away."""
    with driver_errors_as_unavailable():
        conn = await asyncpg.connect(dsn, timeout=connect_timeout)
        try:
            return await apply(conn, directory)
        finally:
            await conn.close()
