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
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn
from fastapi import FastAPI

from media_mgr.amqp.consumer import AmqpConfig, AmqpConsumer, default_node
from media_mgr.audio_stream import endpoint as audio_stream_routes
from media_mgr.audio_stream.buffering import BufferPolicy, LeadRange, Preset
from media_mgr.audio_stream.service import AudioStreamConfig, AudioStreamService
from media_mgr.audio_stream.session import SessionConfig
from media_mgr.config import Settings
from media_mgr.console.router import console_router
from media_mgr.http import playback as playback_routes
from media_mgr.http import recordings as recording_routes
from media_mgr.http import store_put as store_put_routes
from media_mgr.http import streams as stream_routes
from media_mgr.http.api import create_app
from media_mgr.http.connection_limits import ConnectionLimits, protocol_class
from media_mgr.http.guard import require_admin
from media_mgr.http.recordings import RecordingsEdge, RecordingUrls
from media_mgr.http.state import HttpState
from media_mgr.http.store_put import StorePutConfig
from media_mgr.live.registry import MountRegistry
from media_mgr.logs import LISTENING_LOGGER
from media_mgr.media.activity import ActivityRegistry
from media_mgr.media.catalog import Catalog
from media_mgr.media.library import MediaLibrary
from media_mgr.media.playback import Playback, PlaybackConfig
from media_mgr.media.variants import VariantCache
from media_mgr.metrics import Metrics
from media_mgr.recording.ingest import RecordingLimits
from media_mgr.recording.recorder import Recorder
from media_mgr.redaction import redact
from media_mgr.shout.auth import SourceAuth
from media_mgr.shout.relay import RelayManager, media_reader
from media_mgr.shout.server import ShoutCollector, ShoutConfig, ShoutServer
from media_mgr.store import migrate
from media_mgr.store.blobs import BlobStore
from media_mgr.store.embedded import EmbeddedPostgres
from media_mgr.store.media import MediaStore
from media_mgr.store.pool import open_pool
from media_mgr.store.recordings import RecordingStore
from media_mgr.store.revocations import Revocations
from media_mgr.store.settings import SharedSettings
from media_mgr.store.variants import VariantStore

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
    redact.add(str(value))
    return str(value).encode()


async def open_playback(settings: Settings, store: Store, http_port: int) -> Playback:
    """The playback service: URLs issued with ``http_port``, signed with the shared secret."""
    variants = VariantCache(
        VariantStore(store.pool, store.media.blobs),
        store.media.blobs,
        scratch_dir(settings),
        asyncio.Semaphore(settings.limit_transcodes),
    )
    return Playback(
        Catalog(store.media, settings.default_language),
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
    shout: ShoutServer | None = None
    relays: RelayManager | None = None
    _collector: ShoutCollector | None = None
    audio_stream: AudioStreamService | None = None
    _shout_sock: socket.socket | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def build_app(self) -> FastAPI:
        routers = [playback_routes.router, recording_routes.router, store_put_routes.router]
        routers += [stream_routes.router, audio_stream_routes.router]
        return create_app(self._lifespan, self.metrics, routers)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        settings = self.settings
        store = self.store = await open_store(settings)
        try:
            playback = await open_playback(settings, store, self.http_port)
            self.amqp = self._amqp(settings, playback)
            library = open_library(settings, store)
            app.state.http = HttpState(
                library=library,
                playback=playback,
                variants=playback.variants,
                activity=self.activity,
                metrics=self.metrics,
                readiness=self.readiness,
                admin_token=settings.admin_token,
                scratch_dir=scratch_dir(settings),
                limit_upload_bytes=settings.limit_upload_bytes,
                limit_list_page=settings.limit_list_page,
                recordings=await self._open_shout(settings, store, playback, library),
            )
            app.include_router(console_router(library, require_admin, self.shout_port))
            streams = await self._open_audio_stream(settings, playback)
            app.state.audio_stream = app.state.http.streams = streams
            if self.amqp is None:
                log.info("amqp off: MEDIA_MGR_AMQP_URL is not set")
            else:
                await self.amqp.start()  # returns at once; connects (and reconnects) in the background
            self._spawn(self._sweep(store))
            yield
        finally:
            if self.audio_stream is not None:  # before the recorder: its recordings close first
                await self.audio_stream.stop()
                self.audio_stream = None
            await self._close_shout()
            if self.amqp is not None:
                await self.amqp.stop()
                self.amqp = None
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await store.close()
            self.store = None
            log.info("service stopped")

    async def _open_shout(
        self, settings: Settings, store: Store, playback: Playback, library: MediaLibrary
    ) -> RecordingsEdge:
        """The recorder (after the store), then the SHOUT server: sources, live mounts."""
        limits = RecordingLimits(
            max_seconds=settings.limit_recording_seconds,
            max_bytes=settings.limit_recording_bytes,
            buffer_bytes=settings.limit_recording_buffer_bytes,
        )
        recordings = RecordingStore(store.pool, store.media.blobs)
        self.recorder = Recorder(recordings, limits, publish=self._publish_event)
        await self.recorder.start()
        registry = MountRegistry(
            queue_bytes=settings.shout_queue_bytes, burst_bytes=settings.shout_burst_bytes
        )
        config = ShoutConfig(
            head_timeout=settings.timeout_shout_head,
            source_timeout=settings.timeout_shout_source,
            listener_timeout=settings.timeout_shout_listener,
            max_head_bytes=settings.shout_max_head_bytes,
            max_connections=settings.shout_max_connections,
        )
        secret = playback.config.secret
        auth = SourceAuth(secret, settings.shout_source_password)
        self.shout = ShoutServer(config, self.recorder, registry, auth, self.activity)
        self._collector = ShoutCollector(self.shout.state)
        self.metrics.registry.register(self._collector)
        sock, self._shout_sock = self._shout_sock or bind_socket(settings.bind, settings.shout_port), None
        self.shout_port = sock.getsockname()[1]
        await self.shout.start(sock)
        host, port = sock.getsockname()[:2]
        logging.getLogger(LISTENING_LOGGER).info(f"listening shout {host}:{port}")
        urls = RecordingUrls(
            secret, settings.url_host, self.http_port, self.shout_port, settings.shout_url_ttl,
            settings.store_put_url_ttl, settings.store_put_username, settings.store_put_password,
        )  # fmt: skip
        store_put = StorePutConfig(
            settings.store_put_authenticate, settings.store_put_username, settings.store_put_password,
            StorePutConfig.parse_acls(settings.store_put_acls),
        )  # fmt: skip
        self.relays = RelayManager(registry, media_reader(library, playback.variants))
        return RecordingsEdge(self.recorder, urls, scratch_dir(settings), settings.limit_recording_bytes,
                              settings.timeout_probe, store_put, self.relays)  # fmt: skip

    async def _open_audio_stream(self, settings: Settings, playback: Playback) -> AudioStreamService:
        """The mod_audio_stream WebSocket edge; needs the recorder, so it opens after the SHOUT side."""
        assert self.recorder is not None
        policy = BufferPolicy(
            presets={Preset.LOW_LATENCY: LeadRange.parse(settings.playout_low_latency),
                     Preset.BALANCED: LeadRange.parse(settings.playout_balanced),
                     Preset.HIGH_QUALITY: LeadRange.parse(settings.playout_high_quality)},
            adaptive=settings.playout_adaptive,
            fixed_lead_ms=settings.playout_fixed_lead_ms,
            jitter_factor=settings.playout_jitter_factor,
            forced=None if settings.playout_preset == "auto" else Preset(settings.playout_preset),
        )  # fmt: skip
        session = SessionConfig(
            gap_threshold=settings.ws_gap_threshold_ms / 1000, gap_window=settings.ws_gap_window_ms / 1000,
            record_lag=settings.ws_record_lag_ms / 1000, flood_allowance=settings.limit_ws_flood_ms / 1000,
            messages_per_second=settings.limit_ws_messages_per_second,
            bad_frames=settings.limit_ws_bad_frames, metadata_timeout=settings.timeout_ws_metadata,
            policy=policy,
        )  # fmt: skip
        config = AudioStreamConfig(
            session, playback.config.secret, settings.admin_token, settings.url_host, self.http_port,
            url_ttl=settings.ws_url_ttl, limit_sessions=settings.limit_ws_sessions,
            limit_loop_lag=settings.limit_ws_loop_lag_ms / 1000,
            timeout_idle=settings.timeout_ws_idle, timeout_reconnect=settings.timeout_ws_reconnect,
            timeout_send=settings.timeout_ws_send, timeout_refuse=settings.timeout_ws_refuse,
            timeout_ack=settings.timeout_ws_ack, play_queue=settings.limit_ws_play_queue,
            frame=settings.playout_frame_ms / 1000, sync_every=settings.playout_sync_ms / 1000,
        )  # fmt: skip
        service = AudioStreamService(config, self.recorder, playback.catalog, playback.variants, self.metrics,
                                     self.activity, publish=self._publish_event)  # fmt: skip
        await service.start()
        return service

    async def _close_shout(self) -> None:
        """Edges first (relays, then sources: their recordings interrupted), then the recorder."""
        if self.relays is not None:
            await self.relays.stop()
            self.relays = None
        if self._collector is not None:
            self.metrics.registry.unregister(self._collector)
            self._collector = None
        if self.shout is not None:
            await self.shout.stop()
            self.shout = None
        if self.recorder is not None:
            await self.recorder.stop()
            self.recorder = None

    async def _publish_event(self, routing_key: str, body: Mapping[str, Any]) -> None:
        """Recording events go out on the service's events exchange when AMQP is configured."""
        if self.amqp is not None:
            await self.amqp.publish_event(routing_key, body)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep(self, store: Store) -> None:
        """Delete replaced or deleted content once downloads that started on it had time to end."""
        revocations = Revocations(store.pool)
        while True:
            await asyncio.sleep(SWEEP_EVERY_SECONDS)
            try:
                swept = await store.media.blobs.sweep(self.settings.blob_grace_seconds)
                if swept:
                    log.info("orphaned content swept", extra={"blobs": swept})
                await revocations.purge()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("blob sweep failed; will retry", extra={"error": str(exc)})

    def _amqp(self, settings: Settings, playback: Playback) -> AmqpConsumer | None:
        if settings.amqp_url is None:
            return None
        keys = {"kapps": "media_req", "whapps": "media_req", "callevt": "call.media"}
        config = AmqpConfig(
            url=settings.amqp_url,
            exchange=settings.amqp_exchange,
            routing_key=keys[settings.amqp_exchange],
            queue_layout=settings.amqp_queue_layout,
            queue_name=settings.amqp_queue_name,
            legacy_error_codes=settings.amqp_legacy_error_codes,
            advertise=settings.amqp_advertise,
            events_exchange=settings.amqp_events_exchange,
            timeout_reply=settings.timeout_amqp_reply,
            node=settings.amqp_node or default_node(),
        )
        return AmqpConsumer(config, playback)

    async def readiness(self) -> dict[str, bool]:
        checks: dict[str, bool] = {"database": False}
        if self.amqp is not None:
            checks["broker"] = self.amqp.ready
        if self.store is not None:
            try:
                await self.store.pool.fetchval("SELECT 1", timeout=2)
                checks["database"] = True
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass
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
        config = uvicorn.Config(
            self.build_app(),
            loop="uvloop",
            http=protocol_class(
                ConnectionLimits(
                    max_head_bytes=settings.http_max_head_bytes,
                    head_timeout=settings.timeout_http_head,
                    max_connections=settings.http_max_connections,
                )
            ),
            timeout_keep_alive=settings.timeout_http_keep_alive,
            lifespan="on",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=10,
            ws_max_size=settings.limit_ws_message_bytes,
        )
        server = _Server(config)
        await server.serve(sockets=[sock])
        if not server.started:
            raise SystemExit(3)


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


class _Server(uvicorn.Server):
    """uvicorn's server, announcing the ports it got once it really accepts connections."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            for srv in self.servers:
                for sock in srv.sockets:
                    host, port = sock.getsockname()[:2]
                    logging.getLogger(LISTENING_LOGGER).info(f"listening http {host}:{port}")
