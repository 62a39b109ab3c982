"""The audio_stream edge as one object: sessions, their recordings, playback commands, events.

Built once in ``app.py`` from ``AudioStreamConfig.from_settings(settings)`` and entered as
``async with AudioStreamService(...)``: entering starts the reaper (it ends sessions whose module
did not come back within ``timeout_reconnect``) and the event-loop lag watcher; leaving ends every
session (audio held in capture recorded, recording closed as interrupted, ``stopped`` published)
and stops every task by a deadline. The WebSocket route (``endpoint.py``) hands it each
connection, the REST routes (``http/streams.py``) call ``play`` / ``clear`` / ``describe`` /
``issue_url``. Recordings go through the process's ``Recorder`` as WAV (``recording.ingest``);
events through ``publisher.StreamEvents``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from media_mgr.audio.wav_pcm import wav_to_pcm
from media_mgr.audio_stream import auth
from media_mgr.audio_stream.capture.pipeline import Sink
from media_mgr.audio_stream.dialects.base import Dialect, Join
from media_mgr.audio_stream.directory import Directory
from media_mgr.audio_stream.formats import StreamFormat
from media_mgr.audio_stream.handover import Handover
from media_mgr.audio_stream.loop_lag import LoopLag
from media_mgr.audio_stream.playout.pacer import SYNC_PREFIX, Pacer
from media_mgr.audio_stream.playout.player import Player, PlayItem
from media_mgr.audio_stream.publisher import Publish, StreamEvents
from media_mgr.audio_stream.registry import Registry
from media_mgr.audio_stream.session import Session, SessionConfig, SessionState
from media_mgr.config import Settings
from media_mgr.errors import Conflict, InvalidRequest, NotFound
from media_mgr.fleet.instance import Fleet
from media_mgr.fleet.peers import Peers
from media_mgr.ids import new_id
from media_mgr.isotime import iso_from_epoch
from media_mgr.lifecycle import Component
from media_mgr.media.activity import Activity, ActivityRegistry
from media_mgr.media.catalog import Catalog
from media_mgr.media.variants import VariantCache
from media_mgr.metrics import Metrics
from media_mgr.recording.ingest import Ingest, NewRecording, RecordingEnded
from media_mgr.recording.meter import PcmFormat
from media_mgr.recording.recorder import Recorder
from media_mgr.store.audio_stream_sessions import SessionStore
from media_mgr.tasks import TaskSet

log = logging.getLogger("media_mgr.audio_stream")

REAP_EVERY = 1.0


@dataclass(frozen=True)
class AudioStreamConfig:
    session: SessionConfig
    admin_token: str | None
    url_host: str
    url_ttl: int = 86400
    limit_sessions: int = 2000
    limit_loop_lag: float = 0.25  # new streams are refused while the event loop is this far behind
    timeout_idle: float = 600.0
    timeout_reconnect: float = 10.0
    timeout_send: float = 5.0
    timeout_refuse: float = 10.0
    timeout_ack: float = 10.0
    play_queue: int = 16
    frame: float = 0.02
    sync_every: float = 1.0
    hold_grace: float = 1.0
    tick: float = 0.25

    @classmethod
    def from_settings(cls, settings: Settings) -> AudioStreamConfig:
        return cls(
            SessionConfig.from_settings(settings), settings.admin_token, settings.url_host,
            url_ttl=settings.ws_url_ttl, limit_sessions=settings.limit_ws_sessions,
            limit_loop_lag=settings.limit_ws_loop_lag_ms / 1000,
            timeout_idle=settings.timeout_ws_idle, timeout_reconnect=settings.timeout_ws_reconnect,
            timeout_send=settings.timeout_ws_send, timeout_refuse=settings.timeout_ws_refuse,
            timeout_ack=settings.timeout_ws_ack, play_queue=settings.limit_ws_play_queue,
            frame=settings.playout_frame_ms / 1000, sync_every=settings.playout_sync_ms / 1000,
        )  # fmt: skip


def _underruns(session: Session) -> int:
    player = session.player
    return player.pacer.starved + player.pacer.slips if player else 0


class AudioStreamService(Component):
    """``async with AudioStreamService(...) as service:``: its exit ends every session (audio flushed,
    recording closed, ``stopped`` published) and stops its tasks."""

    def __init__(
        self,
        config: AudioStreamConfig,
        *,
        secret: bytes,
        http_port: int,
        recorder: Recorder,
        catalog: Catalog,
        variants: VariantCache,
        metrics: Metrics,
        activity: ActivityRegistry,
        publish: Publish | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.secret = secret  # signs and checks the tokens of issued URLs
        self.http_port = http_port  # the port really bound, written into issued URLs
        self.recorder = recorder
        self.catalog = catalog
        self.variants = variants
        self.metrics = metrics
        self.activity = activity
        self.events = StreamEvents(metrics, publish)
        self.clock = clock
        self.registry = Registry()
        self.directory: Directory | None = None  # set by ``join_fleet``: sessions in the fleet's table
        self.handover: Handover | None = None
        self._entries: dict[str, Activity] = {}
        self._background = TaskSet("audio_stream", log)  # the reaper, the lag watcher
        self._players = TaskSet("audio_stream.players", log)  # one per session playing media
        self.lag = LoopLag(window=self.config.session.gap_window)
        metrics.audio_stream_sessions.set_function(lambda: len(self.registry))
        metrics.audio_stream_loop_lag_ms.set_function(lambda: self.loop_lag * 1000)
        metrics.audio_stream_jitter_ms.set_function(
            lambda: max((s.jitter_ms for s in self.registry), default=0)
        )
        metrics.audio_stream_lead_ms.set_function(
            lambda: max((s.lead().ms for s in self.registry), default=0)
        )
        metrics.audio_stream_underruns.set_function(lambda: sum(map(_underruns, self.registry)))

    # -- lifecycle ---------------------------------------------------------------------------------

    def join_fleet(self, fleet: Fleet, store: SessionStore, peers: Peers) -> tuple[Directory, Handover]:
        """Before entering: sessions registered in the fleet's table, reconnects and control that
        land on another instance reach the one holding the session (``handover.py``)."""
        self.directory = Directory(store, peers)
        self.handover = Handover(self, store, peers, self.config.session)
        fleet.on_gone(self.directory.instance_gone)
        fleet.on_declared_gone(self.taken_over)
        return self.directory, self.handover

    async def start(self) -> None:
        if self.directory is not None:
            self.directory.start()
        self._background.spawn(self._reap(), name="audio_stream.reaper")
        self._background.spawn(self.lag.watch(), name="audio_stream.lag")

    async def stop(self) -> None:
        """Server shutdown: every session ends, the audio it held recorded and its recording closed as
        interrupted ("shutdown"), its ``stopped`` event published (within ``EVENT_TIMEOUT``)."""
        await self._background.stop()
        await asyncio.gather(*(self.end(s, "shutdown", complete=False) for s in list(self.registry)))
        await self._players.stop()
        if self.directory is not None:
            await self.directory.close()
        await self.events.close()

    # -- sessions ----------------------------------------------------------------------------------

    def new_session(
        self, key: str, dialect: Dialect, *, session_id: str | None = None, **kwargs: Any
    ) -> Session:
        session = Session(
            session_id or new_id(),
            key,
            dialect,
            config=self.config.session,
            open_sink=self._open_sink,
            publish=self.emit,
            clock=self.clock,
            timing_reliable=self._timing_reliable,
            **kwargs,
        )
        self.registry.add(session)
        self._entries[session.id] = self.activity.start(
            "audio_stream", "", session.peer, id=session.id, live=session.public
        )
        if self.directory is not None:
            session.on_change = self.directory.changed
            self.directory.changed(session)
        return session

    def drop(self, session: Session) -> None:
        """A session handed over to another instance: forgotten here, nothing closed, no row written."""
        self.registry.remove(session)
        entry = self._entries.pop(session.id, None)
        if entry is not None:
            self.activity.end(entry)
        if self.directory is not None:
            self.directory.moved(session)

    async def end(self, session: Session, reason: str, *, complete: bool) -> None:
        """Finish a session once, whatever ends it; a failing database is logged, never raised."""
        try:
            await session.finish(reason, complete=complete)
        except Exception as exc:
            log.warning(
                "audio_stream session ended with an error",
                extra={"session": session.id, "reason": reason, "error": repr(exc)},
            )
        finally:
            self.registry.remove(session)
            if self.directory is not None:
                self.directory.ended(session)
            entry = self._entries.pop(session.id, None)
            if entry is not None:
                entry.bytes = session.stats.bytes_in
                self.activity.end(entry)

    async def rejoin(
        self, join: Join, dialect: Dialect, now: float, *, peer: str, subprotocol: str | None
    ) -> Session | None:
        """The session a reconnect continues: one held here, else one moved here from the instance
        holding it (``handover.py``); None: a new stream."""
        found = self.registry.rejoin(join.key, now, takeover=join.takeover, metadata=join.metadata)
        if found is None and self.handover is not None:
            found = await self.handover.take(join, dialect, peer=peer, subprotocol=subprotocol)
            entry = self._entries.get(found.id) if found is not None else None
            if entry is not None and found is not None and found.sink is not None:
                entry.media_id = found.sink.id
        return found

    async def taken_over(self) -> None:
        """This instance was declared gone while cut off: a survivor closed its recordings and deleted
        its rows. Every session ends (its socket closed, so the module reconnects somewhere)."""
        sessions = list(self.registry)
        for session in sessions:
            session.owner = None
        await asyncio.gather(*(self.end(s, "taken_over", complete=False) for s in sessions))

    async def _open_sink(self, session: Session, fmt: StreamFormat) -> Sink:
        """The recording named by the session's token when it is still pending, else a new one."""
        pcm = PcmFormat(fmt.rate, fmt.channels)
        ingest: Ingest | None = None
        account_id = session.account_id
        if session.recording_id is not None:
            try:
                ingest = await self.recorder.begin(
                    session.recording_id, origin="audio_stream", peer=session.peer, pcm=pcm
                )
            except (RecordingEnded, NotFound, InvalidRequest) as exc:
                log.info(
                    "audio_stream token's recording is taken; recording into a new one",
                    extra={"session": session.id, "recording_id": session.recording_id, "why": str(exc)},
                )
                with contextlib.suppress(NotFound):
                    account_id = (await self.recorder.get(session.recording_id)).account_id
        if ingest is None:
            name = f"audio_stream {session.call_id or session.stream_id or session.id}.wav"
            new = NewRecording(account_id=account_id, name=name, fmt="wav")
            ingest = await self.recorder.begin_new(new, origin="audio_stream", peer=session.peer, pcm=pcm)
        entry = self._entries.get(session.id)
        if entry is not None:
            entry.media_id = ingest.id
        return ingest

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(REAP_EVERY)
            now = self.clock()
            for session in self.registry.detached_since(now - self.config.timeout_reconnect):
                log.info(
                    "audio_stream module did not reconnect; ending the stream",
                    extra={"session": session.id, "waited_s": self.config.timeout_reconnect},
                )
                await self.end(session, "disconnected", complete=False)

    @property
    def loop_lag(self) -> float:
        """Seconds: how late the event loop ran a timer, the worst of the last gap window. Above
        ``limit_loop_lag`` it is behind on the frames of the streams it has, and taking more would
        make them all late (and their recordings wrong)."""
        return self.lag.peak

    def _timing_reliable(self) -> bool:
        """Whether arrival times mean something (``loop_lag.py``)."""
        return self.lag.reliable(self.config.session.gap_threshold)

    def overloaded(self) -> bool:
        return self.loop_lag > self.config.limit_loop_lag

    def emit(self, session: Session, name: str, fields: dict[str, Any]) -> None:
        self.events.emit(session, name, fields)

    # -- REST: http/streams.py ---------------------------------------------------------------------

    def describe(self, ref: str) -> dict[str, Any]:
        return self.registry.find(ref).public()

    async def issue_url(
        self,
        account_id: str | None,
        name: str | None,
        *,
        rate: int | None = None,
        channels: int | None = None,
    ) -> dict[str, Any]:
        """A WebSocket URL whose token names a new pending WAV recording: the first stream on it fills it.
        ``rate`` / ``channels``, when the caller says them, go into the URL (``auth.ws_url``)."""
        c = self.config
        rec = await self.recorder.create(NewRecording(account_id, name or "audio_stream.wav", fmt="wav"))
        now = time.time()
        expires = int(now) + c.url_ttl
        token = auth.issue(self.secret, rec.id, expires, now)
        return {
            "url": auth.ws_url(c.url_host, self.http_port, token, rate=rate, channels=channels),
            "token": token,
            "recording_id": rec.id,
            "expires_at": iso_from_epoch(expires),
        }

    async def play(
        self, ref: str, *, media_id: str | None, media_name: str | None, checkpoint: str | None
    ) -> dict[str, Any]:
        if checkpoint is not None and checkpoint.startswith(SYNC_PREFIX):  # see playout/pacer.py
            raise InvalidRequest(f"checkpoint names starting with {SYNC_PREFIX!r} are reserved")
        session = self.registry.find(ref)
        fmt = session.fmt
        if fmt is None or session.ending:
            raise Conflict("the stream has not started (no audio yet) or has ended")
        why_not = session.dialect.cannot_play(fmt)
        if why_not is not None:
            raise Conflict(why_not)
        if media_name:
            item = await self.catalog.resolve_name(media_name)
        else:
            found = await self.catalog.get(media_id or "")
            if found is None:
                raise NotFound(f"no media {media_id!r}")
            item = found
        player = self._player(session, fmt)
        content = await self.variants.content(item, "wav", player.rate)
        play = PlayItem(
            secrets.token_hex(8),
            item.id,
            checkpoint,
            wav_to_pcm(self.variants.read(content)),
            item.duration_ms,
        )
        ahead = player.enqueue(play)
        lead = session.lead()
        return {
            "session_id": session.id,
            "item_id": play.id,
            "media_id": item.id,
            "checkpoint": checkpoint,
            "queued_ahead": ahead,
            "sample_rate": player.rate,
            "duration_ms": item.duration_ms,
            "lead_ms": lead.ms,
            "preset": lead.preset.value if lead.preset else "fixed",
        }

    async def clear(self, ref: str) -> dict[str, Any]:
        session = self.registry.find(ref)
        if session.fmt is None or session.ending:
            raise Conflict("the stream has not started (no audio yet) or has ended")
        player = self._player(session, session.fmt)
        cancelled = await player.clear()
        return {"session_id": session.id, "cleared": True, "cancelled": cancelled}

    def _player(self, session: Session, fmt: StreamFormat) -> Player:
        if session.player is None:
            c = self.config
            session.player = Player(
                session.dialect.encoder(session.subprotocol),
                session.dialect.play_rate(fmt),
                Pacer(c.frame, sync_every=c.sync_every, hold_grace=c.hold_grace),
                lambda: session.lead().ms / 1000.0,
                lambda name, fields: self.emit(session, name, fields),
                tasks=self._players,
                limit_queue=c.play_queue,
                send_timeout=c.timeout_send,
                ack_timeout=c.timeout_ack,
            )
            if session.send is not None and session.state is SessionState.ACTIVE:
                session.player.attach(session.send)
        return session.player
