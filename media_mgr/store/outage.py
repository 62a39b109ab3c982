"""One warning when the database goes away and one line when it is back, not one per request.

While PostgreSQL is stopped or restarting every request fails the same way; a warning (or an
asyncpg traceback) per request, per retry of the pool and per background task buries the one fact
that matters. The store's single translation point (``pool.driver_errors_as_unavailable``) reports
every driver failure and every success here: the first failure logs "database unavailable" (with
its cause), the first success after it "database available again" (with how long it lasted). The
callers above the store then log their ``StoreUnavailable`` at debug level at most.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("media_mgr.store")

_POOL_RETRY = "Failed to restore the pool connection floor"  # asyncpg.pool, with a traceback each time


class Outage:
    """Whether the database is down as far as this process has seen, and the two log lines."""

    def __init__(self) -> None:
        self.since: float | None = None  # time.monotonic() of the first failure of this outage

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, cause: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning("database unavailable", extra={"error": type(cause).__name__})

    def ok(self) -> None:
        if self.since is not None:
            lasted = time.monotonic() - self.since
            self.since = None
            log.info("database available again", extra={"after_s": round(lasted, 3)})


class _QuietPoolRetries(logging.Filter):
    """asyncpg's pool re-connects its minimum size with a warning and traceback per attempt: the
    outage line says it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(_POOL_RETRY):
            OUTAGE.failed(record.exc_info[1] if record.exc_info and record.exc_info[1] else ConnectionError())
            return False
        return True


OUTAGE = Outage()
"""The process's view (one database per process)."""

_QUIET = _QuietPoolRetries()


def quiet_pool_retries() -> None:
    """Install the filter on asyncpg's pool logger (idempotent)."""
    logging.getLogger("asyncpg.pool").addFilter(_QUIET)
