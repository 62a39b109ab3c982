"""Before serving or running a command: can the configured database be used? One line if not.

Start-up failures (no such database, login refused, nothing listening) are the user's to fix, so
they are told in one line naming the database (never its password), not as a driver traceback.
This is the only place outside the pool that looks at driver exception classes.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import asyncpg

from media_mgr.store.errors import StoreUnavailable


class DatabaseUnusable(Exception):
    """The database cannot be used; ``str()`` is the line to show."""


def where(dsn: str) -> str:
    """``host:port/database`` of a DSN, without its user or password."""
    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port or 5432}{parts.path or '/'}"


def explain(exc: BaseException, dsn: str | None = None) -> str | None:
    """A user-facing line for a failure to reach or use the database; None for anything else."""
    at = f" at {where(dsn)}" if dsn else ""
    if isinstance(exc, DatabaseUnusable):
        return str(exc)
    if isinstance(exc, StoreUnavailable) and exc.__cause__ is not None:
        return explain(exc.__cause__, dsn) or f"{exc.detail}{at}"
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


async def check_database(dsn: str, *, timeout: float) -> None:
    """Connect once; raises :class:`DatabaseUnusable` with the line to show."""
    try:
        conn = await asyncpg.connect(dsn, timeout=timeout)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnusable(explain(exc, dsn)) from None
    await conn.close()
