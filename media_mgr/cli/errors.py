"""What the CLI says, in one line, when the database cannot be used: never a traceback."""

from __future__ import annotations

from media_mgr.config import Settings
from media_mgr.store.embedded import EmbeddedPostgres, EmbeddedUnavailable
from media_mgr.store.preflight import check_database as check_reachable
from media_mgr.store.preflight import explain


def one_line(exc: BaseException, dsn: str | None = None) -> str | None:
    """A user-facing line for a failure to reach or use the database; None for anything else."""
    if isinstance(exc, EmbeddedUnavailable):
        return str(exc)
    return explain(exc, dsn)


async def check_database(settings: Settings) -> None:
    """Before serving: the configured database answers, or the embedded one can start here."""
    if settings.database_url is None:
        EmbeddedPostgres(settings.data_dir, allow_root=settings.embedded_as_root).check()
        return
    await check_reachable(settings.database_url, timeout=settings.timeout_db_connect)
