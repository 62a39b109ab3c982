"""Composition root: the components of ``media-mgr serve``, entered in order on one exit stack.

Order of entry (each leaves in reverse, so nothing is stopped while something above still uses it):

1. store          PostgreSQL reached (or the embedded one started), migrations, pool
2. tts            speech engines (their worker processes die with it)
   notifications  one LISTEN connection (store/notify.py): caches drop what another instance changed
3. events / AMQP  the broker connection: media_req consumer and the events exchange; it leaves
                  after every producer of events, so ``stopped`` and ``interrupted`` events go out
4. recorder       owner lock, crash recovery, flushing every recording at least once a second
   fleet          this instance registered in PostgreSQL, beating; silent instances declared gone
5. SHOUT server   sources into recordings, live mounts; then the relays that read those mounts
6. audio_stream   mod_audio_stream sessions: left first, their audio flushed into the recorder
7. sweeper        replaced content, revocations and expired speech, once a minute
8. HTTP           uvicorn on the socket bound before anything started (see :meth:`Service.serve`)

Sockets are bound first, so every URL issued carries the port really bound (port 0 too). Besides
the shared HTTP and SHOUT ports, each instance binds its own internal port (``MEDIA_MGR_INTERNAL_PORT``,
a free one by default): the same HTTP app, the address other instances use to reach this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from fastapi import FastAPI

from media_mgr.amqp.config import AmqpConfig
from media_mgr.amqp.consumer import AmqpConsumer
from media_mgr.audio_stream import endpoint as audio_stream_routes
from media_mgr.audio_stream.listener import AudioStreamListener
from media_mgr.audio_stream.service import AudioStreamConfig, AudioStreamService
from media_mgr.builders import (
    Store,
    open_library,
    open_listener,
    open_playback,
    open_recorder,
    open_store,
    open_tts,
    recording_urls,
    shared_secret,
)
from media_mgr.config import Settings
from media_mgr.console.router import console_router
from media_mgr.events import EventPublisher, NoEvents
from media_mgr.fleet.config import FleetConfig, advertised_host
from media_mgr.fleet.instance import Fleet
from media_mgr.fleet.peers import Peers
from media_mgr.http.activity import activity_router
from media_mgr.http.admin import AdminLimits, admin_router
from media_mgr.http.api import create_app
from media_mgr.http.audio_streams import audio_stream_handover_router, audio_streams_router
from media_mgr.http.guard import admin_guard
from media_mgr.http.health import health_router
from media_mgr.http.instances import instances_router
from media_mgr.http.internal_mounts import internal_mounts_router
from media_mgr.http.playback import add_fast_path, playback_router
from media_mgr.http.recordings import recordings_router
from media_mgr.http.relays import relays_router
from media_mgr.http.server import HttpServer, HttpServerConfig, HttpStartFailed
from media_mgr.http.store_put import StorePutConfig, store_put_router
from media_mgr.http.stream_urls import stream_urls_router
from media_mgr.live.registry import MountRegistry
from media_mgr.logs import LISTENING_LOGGER
from media_mgr.media.activity import ActivityRegistry
from media_mgr.media.playback import Playback
from media_mgr.metrics import Metrics
from media_mgr.redaction import redact
from media_mgr.shout.auth import SourceAuth
from media_mgr.shout.config import ShoutConfig
from media_mgr.shout.fleet_mounts import FleetMounts
from media_mgr.shout.fleet_relays import FleetRelays
from media_mgr.shout.relays import RelayConfig, RelayManager, media_reader
from media_mgr.shout.server import ShoutServer
from media_mgr.store.audio_stream_sessions import SessionStore
from media_mgr.store.errors import StoreUnavailable
from media_mgr.store.instances import InstanceStore
from media_mgr.store.live_fleet import LiveMountStore, RelayStore
from media_mgr.store.pool import reachable
from media_mgr.store.revocations import Revocations
from media_mgr.tasks import TaskSet
from media_mgr.tts.service import TtsService

log = logging.getLogger("media_mgr")

SWEEP_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Sockets:
    """The listening sockets, bound before anything starts (audio_stream's only when configured)."""

    http: socket.socket
    shout: socket.socket
    audio_stream: socket.socket | None = None

    @property
    def http_port(self) -> int:
        return int(self.http.getsockname()[1])

    @property
    def shout_port(self) -> int:
        return int(self.shout.getsockname()[1])

    @property
    def ws_port(self) -> int:
        """Where mod_audio_stream is sent: the audio_stream listener, else the HTTP port."""
        sock = self.audio_stream or self.http
        return int(sock.getsockname()[1])

    def close(self) -> None:
        self.http.close()
        self.shout.close()
        if self.audio_stream is not None:
            self.audio_stream.close()

    @classmethod
    def bind(cls, settings: Settings, *, reuse_port: bool = False) -> Sockets:
        """``reuse_port``: more sockets may listen on the HTTP and audio_stream ports (each worker
        its own, ``supervisor.py``)."""
        http = bind_socket(settings.bind, settings.http_port, "MEDIA_MGR_HTTP_PORT", reuse_port=reuse_port)
        try:
            shout = bind_socket(settings.bind, settings.shout_port, "MEDIA_MGR_SHOUT_PORT")
        except BaseException:
            http.close()
            raise
        ws = None
        if settings.audio_stream_port is not None:
            try:
                ws = bind_socket(settings.bind, settings.audio_stream_port, "MEDIA_MGR_AUDIO_STREAM_PORT",
                                 reuse_port=reuse_port)  # fmt: skip
            except BaseException:
                http.close()
                shout.close()
                raise
        return cls(http, shout, ws)


class Service:
    """``media-mgr serve``: every component in one process."""

    def __init__(self, settings: Settings, *, worker: int | None = None) -> None:
        self.settings = settings
        self.worker = worker  # index under ``serve --workers N``; None: a single process
        # Set by ``open`` (tests and ``serve`` reach them here): this instance's own port and its
        # place in the fleet.
        self.internal_socket: socket.socket | None = None
        self.fleet: Fleet | None = None
        self.peers: Peers | None = None
        self.metrics = Metrics()
        self.activity = ActivityRegistry()
        self.on_bound: Callable[[int, int], None] | None = None  # told (http, shout) once bound
        self.migrate = True  # a supervisor's workers leave the migrations to the supervisor
        redact.add(settings.admin_token, settings.secret, settings.store_put_password,
                   settings.shout_source_password)  # fmt: skip

    @contextlib.asynccontextmanager
    async def open(self, sockets: Sockets | None = None) -> AsyncIterator[FastAPI]:
        """Enter every component in order; yield the HTTP app wired to them; leave in reverse."""
        settings = self.settings
        sockets = sockets or Sockets.bind(settings)
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(log.info, "service stopped")  # the last thing leaving does
            stack.callback(sockets.close)
            # A fixed internal port is the first worker's; worker i takes the i-th after it.
            internal_port = settings.internal_port + (self.worker or 0) if settings.internal_port else 0
            internal = bind_socket(settings.bind, internal_port, "MEDIA_MGR_INTERNAL_PORT")
            stack.callback(internal.close)
            self.internal_socket = internal
            store = await stack.enter_async_context(open_store(settings, apply_migrations=self.migrate))
            secret = await shared_secret(settings, store)
            tts = await stack.enter_async_context(open_tts(settings, store))
            listener = await stack.enter_async_context(open_listener(settings, store))
            playback = await open_playback(
                settings, store, http_port=sockets.http_port, secret=secret, tts=tts, listener=listener
            )
            amqp = await stack.enter_async_context(self._amqp(playback))
            events: EventPublisher = amqp or NoEvents()
            recorder = await stack.enter_async_context(open_recorder(settings, store, events))
            internal_url = f"http://{_url_host(advertised_host(settings))}:{internal.getsockname()[1]}"
            fleet_config = FleetConfig.from_settings(settings, worker=self.worker)
            fleet = await stack.enter_async_context(
                Fleet(InstanceStore(store.pool), recorder, fleet_config, internal_url=internal_url,
                      secret=secret)
            )  # fmt: skip
            redact.add(fleet.token)
            peers = await stack.enter_async_context(Peers(fleet))
            self.fleet, self.peers = fleet, peers
            urls = recording_urls(
                settings, secret, http_port=sockets.http_port, shout_port=sockets.shout_port
            )
            registry = MountRegistry(
                queue_bytes=settings.shout_queue_bytes, burst_bytes=settings.shout_burst_bytes
            )
            # fleet (live mounts): ours registered, other instances' mirrored for our listeners
            mounts = await stack.enter_async_context(
                FleetMounts(registry, LiveMountStore(store.pool), fleet, peers)
            )
            await stack.enter_async_context(
                ShoutServer(ShoutConfig.from_settings(settings), sockets.shout, recorder=recorder,
                            registry=registry, auth=SourceAuth(urls, settings.shout_source_password),
                            activity=self.activity, metrics=self.metrics.registry, elsewhere=mounts.mirror,
                            taken_elsewhere=mounts.taken_elsewhere)
            )  # fmt: skip
            host, port = sockets.shout.getsockname()[:2]
            logging.getLogger(LISTENING_LOGGER).info(f"listening shout {host}:{port}")
            library = open_library(settings, store)
            relay_manager = await stack.enter_async_context(
                RelayManager(RelayConfig.from_settings(settings), registry,
                             media_reader(library, playback.variants), elsewhere=mounts.mirror)
            )  # fmt: skip
            # fleet (relays): stored, run by their owner, taken over from a gone instance
            relays = await stack.enter_async_context(
                FleetRelays(relay_manager, RelayStore(store.pool), LiveMountStore(store.pool), fleet, peers)
            )
            streams = AudioStreamService(AudioStreamConfig.from_settings(settings), secret=secret,
                                         http_port=sockets.ws_port, recorder=recorder,
                                         catalog=playback.catalog, variants=playback.variants,
                                         metrics=self.metrics, activity=self.activity,
                                         publish=events.publish)  # fmt: skip
            # fleet: sessions in PostgreSQL; control and reconnects reach the instance holding them
            stream_rows, handover = streams.join_fleet(fleet, SessionStore(store.pool), peers)
            await stack.enter_async_context(streams)
            if sockets.audio_stream is not None:  # leaves before the service ends the sessions
                await stack.enter_async_context(
                    AudioStreamListener(streams, sockets.audio_stream,
                                        max_message_bytes=settings.limit_ws_message_bytes)
                )  # fmt: skip
            sweeper = await stack.enter_async_context(TaskSet("sweeper", log))
            sweeper.spawn(self._sweep(store, tts, fleet), name="sweeper")
            guard = admin_guard(settings.admin_token, fleet.token)
            routers = [
                health_router(lambda: self._readiness(store, amqp), self.metrics),
                admin_router(library, playback.variants, guard, AdminLimits.from_settings(settings),
                             self.metrics),
                stream_urls_router(playback, guard),
                activity_router(self.activity, guard, stream_rows.elsewhere, fleet.id),
                playback_router(playback, self.activity, self.metrics),
                recordings_router(recorder, urls, guard),
                store_put_router(recorder, urls, StorePutConfig.from_settings(settings)),
                relays_router(relays, guard),
                audio_streams_router(streams, guard, stream_rows),
                audio_stream_handover_router(handover, fleet.token),
                audio_stream_routes.router,
                console_router(library, guard, sockets.shout_port),
                instances_router(fleet, guard),
                internal_mounts_router(registry, fleet.token),  # fleet: our mounts for other instances
            ]  # fmt: skip
            app = create_app(routers, self.metrics)
            add_fast_path(app, playback, self.activity, self.metrics)  # stream URLs before FastAPI
            app.state.audio_stream = streams
            yield app

    @contextlib.asynccontextmanager
    async def _amqp(self, playback: Playback) -> AsyncIterator[AmqpConsumer | None]:
        config = AmqpConfig.from_settings(self.settings)
        if config is None:
            log.info("amqp off: MEDIA_MGR_AMQP_URL is not set")
            yield None
            return
        async with AmqpConsumer(config, playback, self.metrics) as consumer:
            yield consumer  # it connects (and reconnects) in the background

    async def _sweep(self, store: Store, tts: TtsService | None, fleet: Fleet) -> None:
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
                await fleet.purge()
            except StoreUnavailable as exc:
                log.warning("sweep failed; will retry", extra={"error": str(exc)})

    @staticmethod
    async def _readiness(store: Store, amqp: AmqpConsumer | None) -> dict[str, bool]:
        checks = {"database": await reachable(store.pool, timeout=2)}
        if amqp is not None:
            checks["broker"] = amqp.ready
        return checks

    async def serve(self, sockets: Sockets | None = None) -> None:
        """Bind (unless a supervisor bound ``sockets``), enter the components, serve HTTP until
        SIGTERM/SIGINT, then leave everything."""
        sockets = sockets or Sockets.bind(self.settings)
        if self.on_bound is not None:
            self.on_bound(sockets.http_port, sockets.shout_port)
        async with contextlib.AsyncExitStack() as stack:
            # A signal before the HTTP server takes the signals over is remembered: the service then
            # closes what it opened instead of serving (the server hands the handlers back when done).
            stop = _StopRequest()
            stack.enter_context(stop.on_signals())
            app = await stack.enter_async_context(self.open(sockets))
            if stop.requested:
                log.info("stop requested while starting")
                return
            try:
                http = await stack.enter_async_context(
                    HttpServer(HttpServerConfig.from_settings(self.settings), app, sockets.http,
                               *([self.internal_socket] if self.internal_socket else []))
                )  # fmt: skip
            except HttpStartFailed:
                raise SystemExit(3) from None
            stop.attach(http)
            _settle_collector()
            await http.wait()


GC_YOUNG_OBJECTS = 100_000


def _settle_collector() -> None:
    """Once everything has started.

    What exists now (modules, the app, the components) lives as long as the process: frozen, out of
    the collector's sight, so a full collection no longer walks it all (a pause that stalled every
    request in flight: tens of ms under load, the stream URLs' p99 tail). And the young generation
    is collected once 100,000 more tracked objects live than died, not 700: the default collected
    every few hundred milliseconds and promoted what lives a quarter second (a connection's tick
    timer, a session's kept frames), so full collections of every live session's objects ran every
    few seconds, 41 to 48 ms each at 600 audio_stream sessions; with this, none in 20 s
    (bench/audio_stream_load.py). Cyclic garbage waits for that many objects at most."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_OBJECTS, 10, 10)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def bind_socket(host: str, port: int, variable: str = "", *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = f" (set by {variable})" if variable else ""
        raise SystemExit(f"cannot listen on {host}:{port}{where}: {exc.strerror}") from None
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
