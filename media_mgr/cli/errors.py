"""What the CLI says, in one line, when the database cannot be used: never a traceback."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import asyncpg

from media_mgr.config import Settings
from media_mgr.store.embedded import EmbeddedPostgres, EmbeddedUnavailable


def where(dsn: str) -> str:
    """``host:port/database`` of a DSN, without its user or password."""
    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port or 5432}{parts.path or '/'}"


def one_line(exc: BaseException, dsn: str | None = None) -> str | None:
    """A user-facing line for a failure to reach or use the database; None for anything else."""
    at = f" at {where(dsn)}" if dsn else ""
    if isinstance(exc, EmbeddedUnavailable | DatabaseUnusable):
        return str(exc)
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"the database{at} does not exist ({exc}): create it or fix MEDIA_MGR_DATABASE_URL"
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError | asyncpg.InvalidPasswordError):
        return f"the database{at} refused the login ({exc}): check MEDIA_MGR_DATABASE_URL"
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
        return f"database error{at}: {exc}"
    if isinstance(exc, socket.gaierror):
        return f"cannot reach the database{at}: unknown host ({exc.strerror})"
    if isinstance(exc, OSError):
        return f"cannot reach the database{at}: {exc.strerror or exc} (is PostgreSQL running?)"
    if isinstance(exc, TimeoutError):
        return f"cannot reach the database{at}: no answer in time"
    return None


class DatabaseUnusable(Exception):
    """Raised by ``check_database`` with the line to show."""


async def check_database(settings: Settings) -> None:
    """Before serving: the configured database answers, or the embedded one can start here."""
    if settings.database_url is None:
        EmbeddedPostgres(settings.data_dir, allow_root=settings.embedded_as_root).check()
        return
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=settings.timeout_db_connect)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnusable(one_line(exc, settings.database_url)) from None
    await conn.close()
