"""Composition root: builds the store, the domain and the edges; starts them in order, stops in reverse.

``Service`` is what ``media-mgr serve`` runs and what the CLI's other commands open (without the
edges) to work on the same store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import socket
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from media_mgr.amqp.config import AmqpConfig
from media_mgr.amqp.consumer import AmqpConsumer
from media_mgr.audio_stream import endpoint as audio_stream_routes
from media_mgr.audio_stream.service import AudioStreamConfig, AudioStreamService
from media_mgr.config import Settings
from media_mgr.console.router import console_router
from media_mgr.events import EventPublisher, NoEvents
from media_mgr.http.activity import activity_router
from media_mgr.http.admin import AdminLimits, admin_router
from media_mgr.http.api import create_app
from media_mgr.http.audio_streams import audio_streams_router
from media_mgr.http.guard import admin_guard
from media_mgr.http.health import health_router
from media_mgr.http.playback import playback_router
from media_mgr.http.recordings import recordings_router
from media_mgr.http.relays import relays_router
from media_mgr.http.server import HttpServer, HttpServerConfig, HttpStartFailed
from media_mgr.http.store_put import StorePutConfig, store_put_router
from media_mgr.http.stream_urls import stream_urls_router
from media_mgr.live.registry import MountRegistry
from media_mgr.logs import LISTENING_LOGGER
from media_mgr.media.activity import ActivityRegistry
from media_mgr.media.catalog import Catalog
from media_mgr.media.library import MediaLibrary
from media_mgr.media.playback import Playback, PlaybackConfig
from media_mgr.media.recording_urls import RecordingUrls, RecordingUrlsConfig
from media_mgr.media.variants import VariantCache
from media_mgr.metrics import Metrics
from media_mgr.recording.config import RecorderConfig
from media_mgr.recording.recorder import Recorder
from media_mgr.redaction import redact
from media_mgr.shout.auth import SourceAuth
from media_mgr.shout.config import ShoutConfig
from media_mgr.shout.relays import RelayConfig, RelayManager, media_reader
from media_mgr.shout.server import ShoutServer
from media_mgr.store import migrate
from media_mgr.store.blobs import BlobStore
from media_mgr.store.embedded import EmbeddedPostgres
from media_mgr.store.errors import StoreUnavailable
from media_mgr.store.media import MediaStore
from media_mgr.store.pool import Pool, open_pool, reachable
from media_mgr.store.recordings import RecordingStore
from media_mgr.store.revocations import Revocations
from media_mgr.store.settings import SharedSettings
from media_mgr.store.tts_cache import TtsCacheStore
from media_mgr.store.variants import VariantStore
from media_mgr.tts.service import TtsConfig, TtsService, build_engines

log = logging.getLogger("media_mgr")

SECRET_KEY = "url_secret"
SWEEP_EVERY_SECONDS = 60.0


@dataclass
class Store:
    """The database side, open: what every command needs."""

    pool: Pool
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
            migrations = settings.migrations_dir or migrate.default_dir()
            await migrate.migrate_database(dsn, migrations, connect_timeout=settings.timeout_db_connect)
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
    redact.add(str(value))
    return str(value).encode()


def open_tts(settings: Settings, store: Store) -> TtsService | None:
    """The TTS service (enter it with ``async with``); None when ``MEDIA_MGR_TTS_ENGINES`` is empty."""
    config = TtsConfig.from_settings(settings)
    if not config.engines:
        return None
    engines, broken = build_engines(config, settings)
    return TtsService(config, store.media, TtsCacheStore(store.pool), engines, broken)


async def open_playback(
    settings: Settings, store: Store, http_port: int, tts: TtsService | None = None
) -> Playback:
    """The playback service: URLs issued with ``http_port``, signed with the shared secret."""
    variants = VariantCache(
        VariantStore(store.pool, store.media.blobs),
        store.media.blobs,
        scratch_dir(settings),
        asyncio.Semaphore(settings.limit_transcodes),
    )
    return Playback(
        Catalog(store.media, settings.default_language, tts),
        variants,
        Revocations(store.pool),
        PlaybackConfig(settings.url_host, http_port, settings.url_ttl, await shared_secret(settings, store)),
    )


@dataclass
class Service:
    """``media-mgr serve``: everything in one process."""

    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    activity: ActivityRegistry = field(default_factory=ActivityRegistry)
    store: Store | None = None
    amqp: AmqpConsumer | None = None
    http_port: int = field(init=False, default=0)  # the port really bound, for issued URLs
    shout_port: int = field(init=False, default=0)
    recorder: Recorder | None = None
    _shout_side: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    _shout_sock: socket.socket | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    events: EventPublisher = field(default_factory=NoEvents)

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[FastAPI]:
        """Start store, domain and edges in order; yield the HTTP app wired to them; stop in reverse."""
        settings = self.settings
        store = self.store = await open_store(settings)
        tts = open_tts(settings, store)
        edges = contextlib.AsyncExitStack()
        try:
            playback = await open_playback(settings, store, self.http_port, tts)
            amqp_config = AmqpConfig.from_settings(settings)
            self.amqp = None if amqp_config is None else AmqpConsumer(amqp_config, playback)
            self.events = NoEvents() if self.amqp is None else self.amqp
            library = open_library(settings, store)
            recorder, urls, relays = await self._open_shout(settings, store, playback, library)
            # entered last, left first: before the recorder, so its recordings close first
            streams = await edges.enter_async_context(self._audio_stream(settings, playback))
            guard = admin_guard(settings.admin_token)
            routers = [
                health_router(self.readiness, self.metrics),
                admin_router(
                    library, playback.variants, guard, AdminLimits.from_settings(settings), self.metrics
                ),
                stream_urls_router(playback, guard),
                activity_router(self.activity, guard),
                playback_router(playback, self.activity, self.metrics),
                recordings_router(recorder, urls, guard),
                store_put_router(recorder, urls, StorePutConfig.from_settings(settings)),
                relays_router(relays, guard),
                audio_streams_router(streams, guard),
                audio_stream_routes.router,
                console_router(library, guard, self.shout_port),
            ]
            app = create_app(routers, self.metrics)
            app.state.audio_stream = streams
            if self.amqp is None:
                log.info("amqp off: MEDIA_MGR_AMQP_URL is not set")
            else:
                await self.amqp.start()  # returns at once; connects (and reconnects) in the background
            self._spawn(self._sweep(store, tts))
            yield app
        finally:
            await edges.aclose()
            await self._close_shout()
            if self.amqp is not None:
                await self.amqp.stop()
                self.amqp = None
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if tts is not None:
                await tts.close()
            await store.close()
            self.store = None
            log.info("service stopped")

    async def _open_shout(
        self, settings: Settings, store: Store, playback: Playback, library: MediaLibrary
    ) -> tuple[Recorder, RecordingUrls, RelayManager]:
        """The recorder (after the store), then the SHOUT server: sources, live mounts; relays."""
        recordings = RecordingStore(store.pool, store.media.blobs)
        recorder_config = RecorderConfig.from_settings(settings)
        self.recorder = Recorder(recordings, recorder_config, publish=self.events.publish)
        await self.recorder.start()
        registry = MountRegistry(
            queue_bytes=settings.shout_queue_bytes, burst_bytes=settings.shout_burst_bytes
        )
        secret = playback.config.secret
        auth = SourceAuth(secret, settings.shout_source_password)
        sock, self._shout_sock = self._shout_sock or bind_socket(settings.bind, settings.shout_port), None
        self.shout_port = sock.getsockname()[1]
        await self._shout_side.enter_async_context(
            ShoutServer(ShoutConfig.from_settings(settings), sock, recorder=self.recorder, registry=registry,
                        auth=auth, activity=self.activity, metrics=self.metrics.registry)
        )  # fmt: skip
        host, port = sock.getsockname()[:2]
        logging.getLogger(LISTENING_LOGGER).info(f"listening shout {host}:{port}")
        urls_config = RecordingUrlsConfig.from_settings(
            settings, http_port=self.http_port, shout_port=self.shout_port
        )
        read_media = media_reader(library, playback.variants)
        relays = await self._shout_side.enter_async_context(
            RelayManager(RelayConfig.from_settings(settings), registry, read_media)
        )
        return self.recorder, RecordingUrls(urls_config, secret), relays

    def _audio_stream(self, settings: Settings, playback: Playback) -> AudioStreamService:
        """The mod_audio_stream WebSocket edge; needs the recorder, so it opens after the SHOUT side."""
        assert self.recorder is not None
        return AudioStreamService(
            AudioStreamConfig.from_settings(settings),
            secret=playback.config.secret,
            http_port=self.http_port,
            recorder=self.recorder,
            catalog=playback.catalog,
            variants=playback.variants,
            metrics=self.metrics,
            activity=self.activity,
            publish=self.events.publish,
        )

    async def _close_shout(self) -> None:
        """Edges first (relays, then sources: their recordings interrupted), then the recorder."""
        await self._shout_side.aclose()
        if self.recorder is not None:
            await self.recorder.stop()
            self.recorder = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep(self, store: Store, tts: TtsService | None) -> None:
        """Delete replaced or deleted content once downloads that started on it had time to end."""
        revocations = Revocations(store.pool)
        while True:
            await asyncio.sleep(SWEEP_EVERY_SECONDS)
            try:
                swept = await store.media.blobs.sweep(self.settings.blob_grace_seconds)
                if swept:
                    log.info("orphaned content swept", extra={"blobs": swept})
                await revocations.purge()
                if tts is not None:
                    await tts.sweep()
            except StoreUnavailable as exc:
                log.warning("blob sweep failed; will retry", extra={"error": str(exc)})

    async def readiness(self) -> dict[str, bool]:
        checks: dict[str, bool] = {"database": False}
        if self.amqp is not None:
            checks["broker"] = self.amqp.ready
        if self.store is not None:
            checks["database"] = await reachable(self.store.pool, timeout=2)
        return checks

    def __post_init__(self) -> None:
        self.http_port = self.settings.http_port
        settings = self.settings
        redact.add(settings.admin_token, settings.secret, settings.store_put_password,
                   settings.shout_source_password)  # fmt: skip

    async def serve(self) -> None:
        settings = self.settings
        # Bind first, so the URLs the lifespan's services issue carry the real port (port 0 too).
        sock = bind_socket(settings.bind, settings.http_port)
        self.http_port = sock.getsockname()[1]
        self._shout_sock = bind_socket(settings.bind, settings.shout_port)
        async with contextlib.AsyncExitStack() as stack:
            # A signal before the HTTP server takes the signals over is remembered: the service then
            # closes what it opened instead of serving (the server hands the handlers back when done).
            stop = _StopRequest()
            stack.enter_context(stop.on_signals())
            app = await stack.enter_async_context(self.open())
            if stop.requested:
                log.info("stop requested while starting")
                return
            try:
                http = await stack.enter_async_context(
                    HttpServer(HttpServerConfig.from_settings(settings), app, sock)
                )
            except HttpStartFailed:
                raise SystemExit(3) from None
            stop.attach(http)
            await http.wait()


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


class _StopRequest:
    """SIGTERM or SIGINT while the service starts. The loop sees a signal only at its next poll, which
    may come once the HTTP server is already starting: the server, once there, is then stopped."""

    def __init__(self) -> None:
        self.requested = False
        self.server: HttpServer | None = None

    def attach(self, server: HttpServer) -> None:
        """From now on a signal stops ``server``; one that came while it started stops it at once."""
        self.server = server
        if self.requested:
            server.stop()

    def __call__(self) -> None:
        self.requested = True
        if self.server is not None:
            self.server.stop()

    @contextlib.contextmanager
    def on_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, self)
        try:
            yield
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
