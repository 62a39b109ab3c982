"""Composition root: builds the store, the domain and the edges; starts them in order, stops in reverse.

``Service`` is what ``media-mgr serve`` runs and what the CLI's other commands open (without the
edges) to work on the same store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import uvicorn
from fastapi import FastAPI

from media_mgr.config import Settings
from media_mgr.http.api import create_app
from media_mgr.http.state import HttpState
from media_mgr.media.library import MediaLibrary
from media_mgr.metrics import Metrics
from media_mgr.store import migrate
from media_mgr.store.blobs import BlobStore
from media_mgr.store.embedded import EmbeddedPostgres
from media_mgr.store.media import MediaStore
from media_mgr.store.pool import open_pool
from media_mgr.store.settings import SharedSettings

log = logging.getLogger("media_mgr")

SECRET_KEY = "url_secret"
SWEEP_EVERY_SECONDS = 60.0


@dataclass
class Store:
    """The database side, open: what every command needs."""

    pool: asyncpg.Pool
    media: MediaStore
    shared: SharedSettings
    embedded: EmbeddedPostgres | None

    async def close(self) -> None:
        await self.pool.close()
        if self.embedded is not None:
            await self.embedded.stop()


async def open_store(settings: Settings, *, apply_migrations: bool = True) -> Store:
    """Start or reach PostgreSQL, apply migrations, open the pool."""
    embedded: EmbeddedPostgres | None = None
    if settings.database_url:
        dsn = settings.database_url
    else:
        embedded = EmbeddedPostgres(settings.data_dir)
        dsn = await embedded.start()
    try:
        if apply_migrations:
            conn = await asyncpg.connect(dsn, timeout=settings.timeout_db_connect)
            try:
                await migrate.apply(conn, settings.migrations_dir or migrate.default_dir())
            finally:
                await conn.close()
        pool = await open_pool(
            dsn,
            min_size=settings.store_pool_min,
            max_size=settings.store_pool_max,
            command_timeout=settings.timeout_db_command,
            connect_timeout=settings.timeout_db_connect,
        )
    except BaseException:
        if embedded is not None:
            await embedded.stop()
        raise
    blobs = BlobStore(pool, settings.store_chunk_bytes)
    return Store(pool, MediaStore(pool, blobs), SharedSettings(pool), embedded)


def open_library(settings: Settings, store: Store) -> MediaLibrary:
    return MediaLibrary(
        store.media,
        scratch_dir(settings),
        probe_timeout=settings.timeout_probe,
        default_language=settings.default_language,
    )


def scratch_dir(settings: Settings) -> Path:
    path = settings.data_dir / "scratch"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def shared_secret(settings: Settings, store: Store) -> bytes:
    """The URL signing key: configured, or generated once and shared through the database."""
    if settings.secret:
        return settings.secret.encode()
    value = await store.shared.get(SECRET_KEY)
    if value is None:
        value = await store.shared.put_once(SECRET_KEY, secrets.token_urlsafe(32))
    return str(value).encode()


@dataclass
class Service:
    """``media-mgr serve``: everything in one process."""

    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    store: Store | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def build_app(self) -> FastAPI:
        return create_app(self._lifespan, self.metrics)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        settings = self.settings
        store = self.store = await open_store(settings)
        try:
            await shared_secret(settings, store)
            app.state.http = HttpState(
                library=open_library(settings, store),
                metrics=self.metrics,
                readiness=self.readiness,
                admin_token=settings.admin_token,
                scratch_dir=scratch_dir(settings),
                limit_upload_bytes=settings.limit_upload_bytes,
                limit_list_page=settings.limit_list_page,
            )
            if settings.amqp_url is None:
                log.info("amqp off: MEDIA_MGR_AMQP_URL is not set")
            self._spawn(self._sweep_blobs(store))
            yield
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await store.close()
            self.store = None
            log.info("service stopped")

    def _spawn(self, coro: asyncio.Future[None] | object) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep_blobs(self, store: Store) -> None:
        """Delete replaced or deleted content once downloads that started on it had time to end."""
        while True:
            await asyncio.sleep(SWEEP_EVERY_SECONDS)
            try:
                swept = await store.media.blobs.sweep(self.settings.blob_grace_seconds)
                if swept:
                    log.info("orphaned content swept", extra={"blobs": swept})
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("blob sweep failed; will retry", extra={"error": str(exc)})

    async def readiness(self) -> dict[str, bool]:
        checks: dict[str, bool] = {"database": False}
        if self.store is not None:
            try:
                await self.store.pool.fetchval("SELECT 1", timeout=2)
                checks["database"] = True
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass
        return checks

    async def serve(self) -> None:
        settings = self.settings
        config = uvicorn.Config(
            self.build_app(),
            host=settings.bind,
            port=settings.http_port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=10,
        )
        server = _Server(config)
        await server.serve()
        if not server.started:
            raise SystemExit(3)


class _Server(uvicorn.Server):
    """uvicorn's server, announcing the ports it got once it really accepts connections."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            for srv in self.servers:
                for sock in srv.sockets:
                    host, port = sock.getsockname()[:2]
                    log.info(f"listening http {host}:{port}")
