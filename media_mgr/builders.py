"""Builders of the pieces below the edges, shared by ``serve`` (app.py) and the CLI's media commands.

Each builder takes ``Settings`` and what it depends on, and either returns a plain object or is an
async context manager that closes what it opened. The CLI builds only what a command needs
(``import`` the store and the library, ``url`` playback, ``record-url`` the recorder and its URL
issuer) with these same functions, so a command behaves exactly as the server would.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from media_mgr.config import Settings
from media_mgr.events import EventPublisher, NoEvents
from media_mgr.media.cache import MediaCache
from media_mgr.media.catalog import Catalog
from media_mgr.media.library import MediaLibrary
from media_mgr.media.playback import Playback, PlaybackConfig
from media_mgr.media.recording_urls import RecordingUrls, RecordingUrlsConfig
from media_mgr.media.revoked import RevokedNonces
from media_mgr.media.variants import VariantCache
from media_mgr.recording.config import RecorderConfig
from media_mgr.recording.recorder import Recorder
from media_mgr.redaction import redact
from media_mgr.store import migrate
from media_mgr.store.blobs import BlobStore
from media_mgr.store.embedded import EmbeddedPostgres
from media_mgr.store.media import MEDIA_CHANNEL, MediaStore
from media_mgr.store.notify import Listener, ListenerConfig
from media_mgr.store.pool import Pool, open_pool
from media_mgr.store.recordings import RecordingStore
from media_mgr.store.revocations import REVOKED_CHANNEL, Revocations
from media_mgr.store.settings import SharedSettings
from media_mgr.store.tts_cache import TtsCacheStore
from media_mgr.store.variants import VariantStore
from media_mgr.tts.service import TtsConfig, TtsService, build_engines

SECRET_KEY = "url_secret"


@dataclass(frozen=True)
class Store:
    """The database side, open: what every command needs."""

    pool: Pool
    media: MediaStore
    shared: SharedSettings
    dsn: str = ""


@contextlib.asynccontextmanager
async def open_store(settings: Settings, *, apply_migrations: bool = True) -> AsyncIterator[Store]:
    """Start or reach PostgreSQL, apply migrations, open the pool; close (and stop) on exit."""
    async with contextlib.AsyncExitStack() as stack:
        if settings.database_url:
            dsn = settings.database_url
        else:
            embedded = EmbeddedPostgres(settings.data_dir, allow_root=settings.embedded_as_root)
            dsn = await embedded.start()
            stack.push_async_callback(embedded.stop)
        if apply_migrations:
            migrations = settings.migrations_dir or migrate.default_dir()
            await migrate.migrate_database(dsn, migrations, connect_timeout=settings.timeout_db_connect)
        pool = await open_pool(
            dsn,
            min_size=settings.store_pool_min,
            max_size=settings.store_pool_max,
            command_timeout=settings.timeout_db_command,
            connect_timeout=settings.timeout_db_connect,
        )
        stack.push_async_callback(pool.close)
        blobs = BlobStore(pool, settings.store_chunk_bytes)
        yield Store(pool, MediaStore(pool, blobs), SharedSettings(pool), dsn)


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
    redact.add(str(value))
    return str(value).encode()


def open_library(settings: Settings, store: Store) -> MediaLibrary:
    return MediaLibrary(
        store.media,
        scratch_dir(settings),
        probe_timeout=settings.timeout_probe,
        default_language=settings.default_language,
    )


@contextlib.asynccontextmanager
async def open_tts(settings: Settings, store: Store) -> AsyncIterator[TtsService | None]:
    """The TTS service; None when ``MEDIA_MGR_TTS_ENGINES`` is empty (``tts://`` is then not_found)."""
    config = TtsConfig.from_settings(settings)
    if not config.engines:
        yield None
        return
    engines, broken = build_engines(config, settings)
    async with TtsService(config, store.media, TtsCacheStore(store.pool), engines, broken) as tts:
        yield tts


def open_listener(settings: Settings, store: Store) -> Listener:
    """LISTEN/NOTIFY on a connection of its own (enter it with ``async with``): what other instances
    changed, heard by the caches here (and by any component that subscribes)."""
    return Listener(ListenerConfig(store.dsn, connect_timeout=settings.timeout_db_connect))


async def open_playback(
    settings: Settings,
    store: Store,
    *,
    http_port: int,
    secret: bytes,
    tts: TtsService | None,
    listener: Listener | None = None,
) -> Playback:
    """Playback: URLs issued for ``http_port`` (the port really bound), signed with ``secret``.

    With a ``listener``, records, names, revocations and small contents are kept in memory
    (``MEDIA_MGR_CACHE_BYTES``) and dropped as its notifications say; without one, each lookup
    reads the database (the CLI's commands)."""
    cache = MediaCache(settings.cache_bytes, settings.cache_item_bytes)
    revocations = Revocations(store.pool)
    revoked = RevokedNonces(revocations)
    if listener is not None and settings.cache_bytes > 0:
        listener.subscribe(MEDIA_CHANNEL, cache.changed, cache.reset)
        listener.subscribe(REVOKED_CHANNEL, revoked.revoked, revoked.reset)
    variants = VariantCache(
        VariantStore(store.pool, store.media.blobs),
        store.media.blobs,
        scratch_dir(settings),
        asyncio.Semaphore(settings.limit_transcodes),
    )
    return Playback(
        Catalog(store.media, settings.default_language, tts, cache),
        variants,
        revocations,
        PlaybackConfig(settings.url_host, http_port, settings.url_ttl, secret),
        revoked=revoked,
    )


def open_recorder(settings: Settings, store: Store, events: EventPublisher | None = None) -> Recorder:
    """The recorder (enter it with ``async with``): owner lock, crash recovery, flushing."""
    recordings = RecordingStore(store.pool, store.media.blobs)
    publish = (events or NoEvents()).publish
    return Recorder(recordings, RecorderConfig.from_settings(settings), publish=publish)


def recording_urls(settings: Settings, secret: bytes, *, http_port: int, shout_port: int) -> RecordingUrls:
    """The one issuer of recording URLs (``shout_url``, ``store_url``), for the ports really bound."""
    config = RecordingUrlsConfig.from_settings(settings, http_port=http_port, shout_port=shout_port)
    return RecordingUrls(config, secret)
