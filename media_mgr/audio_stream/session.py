"""One stream of one call: its media clock, its recording, its playout; lives across reconnects.

A session is created by the first connection of a stream and outlives it: voipbit reconnects after
any close without repeating ``start`` (reference A1.8), and the new socket joins the same session,
so the recording goes on. Audio goes media clock -> ``TrackClock`` (bursts keep their place, gaps
become silence) -> ``Assembler`` (tracks side by side, inbound left) -> the recording, which commits
to PostgreSQL within a second. States: OPENING (audio, format not known yet) -> ACTIVE <-> DETACHED
(socket gone, waiting for the module) -> ENDED.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from media_mgr.audio_stream.binary import FormatHint, Framer
from media_mgr.audio_stream.buffering import BufferPolicy, Lead
from media_mgr.audio_stream.capture import Capture, Sink
from media_mgr.audio_stream.clock import Chunk
from media_mgr.audio_stream.events import Audio, BadInput, Media, Metadata, Start
from media_mgr.audio_stream.flood import FloodGuard
from media_mgr.audio_stream.formats import Dialect, StreamFormat, binary_default, binary_format, guess_voipbit
from media_mgr.audio_stream.pcm import ulaw_to_l16
from media_mgr.audio_stream.player import Player
from media_mgr.config import Settings

log = logging.getLogger("media_mgr.audio_stream")

EARLY_LIMIT_BYTES = 256 * 1024  # audio held while the format is not known yet
EARLY_VOIPBIT_MESSAGES = 2  # a reconnect without start: tracks are known after one tick


class SessionState(enum.Enum):
    OPENING = "opening"
    ACTIVE = "active"
    DETACHED = "detached"
    ENDED = "ended"


OpenSink = Callable[["Session", StreamFormat], Awaitable[Sink]]
Publish = Callable[["Session", str, dict[str, Any]], None]


@dataclass(frozen=True)
class SessionConfig:
    gap_threshold: float = 0.06
    gap_window: float = 0.4
    max_hold: float = 2.0
    record_lag: float = 0.5
    flood_allowance: float = 2.0
    messages_per_second: float = 50.0
    bad_frames: int = 50
    metadata_timeout: float = 1.0
    policy: BufferPolicy = field(default_factory=BufferPolicy)

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionConfig:
        return cls(
            gap_threshold=settings.ws_gap_threshold_ms / 1000, gap_window=settings.ws_gap_window_ms / 1000,
            record_lag=settings.ws_record_lag_ms / 1000, flood_allowance=settings.limit_ws_flood_ms / 1000,
            messages_per_second=settings.limit_ws_messages_per_second,
            bad_frames=settings.limit_ws_bad_frames, metadata_timeout=settings.timeout_ws_metadata,
            policy=BufferPolicy.from_settings(settings),
        )  # fmt: skip


@dataclass
class Stats:
    chunks: int = 0
    bytes_in: int = 0
    bad_frames: int = 0
    odd_sizes: int = 0
    texts: int = 0
    reconnects: int = 0


class Session:
    def __init__(
        self,
        session_id: str,
        key: str,
        dialect: Dialect,
        *,
        path: str,
        peer: str,
        hint: FormatHint,
        encoding_hint: str | None,
        config: SessionConfig,
        account_id: str | None = None,
        subprotocol: str | None = None,
        recording_id: str | None = None,
        timing_reliable: Callable[[], bool] = lambda: True,
        open_sink: OpenSink,
        publish: Publish,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = session_id
        self.key = key
        self.dialect = dialect
        self.path = path
        self.peer = peer
        self.hint = hint
        self.encoding_hint = encoding_hint
        self.account_id = account_id
        self.subprotocol = subprotocol
        self.recording_id = recording_id  # the pending recording a signed token named, if any
        self.timing_reliable = timing_reliable
        self.config = config
        self.open_sink = open_sink
        self.publish = publish
        self.clock = clock
        self.state = SessionState.OPENING
        self.started_at = time.time()
        self.call_id: str | None = None
        self.stream_id: str | None = None
        self.extra_headers: str | None = None
        self.metadata: Metadata | None = None
        self.fmt: StreamFormat | None = None
        self.sink: Sink | None = None
        self.player: Player | None = None
        self.send: Callable[[str], Awaitable[None]] | None = None
        self.owner: object | None = None
        self.end_reason: str | None = None
        self.stats = Stats()
        self.guard = FloodGuard(config.flood_allowance, config.messages_per_second)
        self.detached_at: float | None = None
        self.last_arrival = clock()
        self._first_arrival: float | None = None
        self.capture: Capture | None = None
        self._early: list[tuple[Media | Audio, float]] = []
        self._early_bytes = 0
        self._chunk_base: int | None = None
        self._next: list[int] = []
        self._binary_pos = 0
        self._framer: Framer | None = None

    # -- format ------------------------------------------------------------------------------------

    async def on_start(self, start: Start, fmt: StreamFormat) -> None:
        self.call_id, self.stream_id, self.extra_headers = start.call_id, start.stream_id, start.extra_headers
        self._chunk_base = 0
        await self._set_format(fmt)

    async def _set_format(self, fmt: StreamFormat) -> None:
        if self.fmt is not None:
            return
        c = self.config
        self.fmt = fmt
        self._next = [0] * len(fmt.track_channels)
        self.sink = await self.open_sink(self, fmt)
        self.capture = Capture(
            fmt, self.sink, gap_threshold=c.gap_threshold, gap_window=c.gap_window, max_hold=c.max_hold,
            record_lag=c.record_lag, timing_reliable=self.timing_reliable, label=self.id,
        )  # fmt: skip
        self.state = SessionState.ACTIVE
        self.publish(self, "started", {})
        early, self._early, self._early_bytes = self._early, [], 0
        for item, arrival in early:
            if isinstance(item, Media):
                await self._media(item, arrival)
            else:
                await self._audio(item, arrival)

    # -- audio in ----------------------------------------------------------------------------------

    async def on_media(self, media: Media, now: float) -> None:
        """voipbit ``media``: one chunk of one track."""
        self._arrived(now, len(media.payload))
        if self.stream_id is None and media.stream_id:
            self.stream_id = media.stream_id
        if self.fmt is None:
            self._early.append((media, now))
            seen = [m.track for m, _ in self._early if isinstance(m, Media)]
            if len(seen) >= EARLY_VOIPBIT_MESSAGES or len(set(seen)) == 2:
                await self._set_format(guess_voipbit(len(media.payload), seen, self.hint, self.encoding_hint))
            return
        await self._media(media, now)

    async def _media(self, media: Media, now: float) -> None:
        fmt = self.fmt
        assert fmt is not None
        if media.track not in fmt.tracks:
            raise BadInput(f"media for track {media.track!r}, which this stream does not carry")
        track = fmt.tracks.index(media.track)
        if len(media.payload) != fmt.chunk_bytes():
            self.stats.odd_sizes += 1
            if self.stats.odd_sizes == 1:
                log.warning(
                    "audio_stream payload is not one 20 ms chunk",
                    extra={"session": self.id, "bytes": len(media.payload), "expected": fmt.chunk_bytes()},
                )
        pcm = (
            ulaw_to_l16(media.payload)
            if fmt.encoding == "mulaw"
            else media.payload[: len(media.payload) & ~1]
        )
        frames = len(pcm) // 2
        if media.chunk is not None:
            if self._chunk_base is None:
                self._chunk_base = media.chunk - 1
            position = (media.chunk - 1 - self._chunk_base) * fmt.frame_samples
        else:
            position = self._next[track]
        self._next[track] = position + frames
        self.guard.media(position / fmt.rate, (position + frames) / fmt.rate, now)
        assert self.capture is not None
        await self.capture.put(track, Chunk(position, pcm, now))

    async def on_audio(self, audio: Audio, now: float) -> None:
        """Binary dialect: raw interleaved s16le."""
        self._arrived(now, len(audio.pcm))
        if self.fmt is None:
            self._early.append((audio, now))
            self._early_bytes += len(audio.pcm)
            fmt = binary_format(self.hint, None)  # the URL may say it all already
            if fmt is not None:
                await self._set_format(fmt)
            elif self._early_bytes > EARLY_LIMIT_BYTES:
                await self._default_binary_format()
            return
        await self._audio(audio, now)

    async def _audio(self, audio: Audio, now: float) -> None:
        fmt = self.fmt
        assert fmt is not None
        if self._framer is None:
            self._framer = Framer(2 * fmt.channels)
        pcm = self._framer.feed(audio.pcm)
        position, self._binary_pos = self._binary_pos, self._binary_pos + len(pcm) // self._framer.block_align
        self.guard.media(position / fmt.rate, self._binary_pos / fmt.rate, now)
        assert self.capture is not None
        await self.capture.put(0, Chunk(position, pcm, now))

    async def on_metadata(self, meta: Metadata) -> None:
        self.metadata = meta
        self.call_id = self.call_id or meta.call_id
        if self.fmt is None:
            fmt = binary_format(self.hint, FormatHint(meta.rate, meta.channels))
            if fmt is not None:
                await self._set_format(fmt)
        elif meta.rate is not None and meta.rate != self.fmt.rate:
            log.warning(
                "audio_stream metadata names another rate than the one in use; keeping it",
                extra={"session": self.id, "metadata_rate": meta.rate, "rate": self.fmt.rate},
            )

    async def _default_binary_format(self) -> None:
        meta = self.metadata
        hint = FormatHint(meta.rate, meta.channels) if meta else None
        fmt = binary_format(self.hint, hint) or binary_default(self.hint, hint)
        if fmt.learnt_from == "default":
            log.warning(
                "audio_stream binary stream names no rate (URL ?rate= or metadata); assuming 8000 Hz",
                extra={"session": self.id, "channels": fmt.channels},
            )
        await self._set_format(fmt)

    def _arrived(self, now: float, size: int) -> None:
        self.last_arrival = now
        self._first_arrival = self._first_arrival or now
        self.stats.chunks += 1
        self.stats.bytes_in += size

    def bad_frame(self, problem: BadInput) -> None:
        """Count an unusable frame; too many end the connection."""
        self.stats.bad_frames += 1
        if self.stats.bad_frames == 1:
            log.warning("audio_stream frame dropped", extra={"session": self.id, "reason": problem.reason})
        if self.stats.bad_frames > self.config.bad_frames:
            raise BadInput(
                f"{self.stats.bad_frames} unusable frames ({problem.reason})", fatal=True, close_code=1007
            )

    async def tick(self, now: float) -> None:
        """Housekeeping between frames: a binary format that never came, audio of a paused stream."""
        if self.fmt is None and self._first_arrival is not None:
            if self.dialect is Dialect.BINARY and now - self._first_arrival >= self.config.metadata_timeout:
                await self._default_binary_format()
            elif self.dialect is Dialect.VOIPBIT and now - self._first_arrival >= 0.2:
                first = next(m for m, _ in self._early if isinstance(m, Media))
                seen = [m.track for m, _ in self._early if isinstance(m, Media)]
                await self._set_format(guess_voipbit(len(first.payload), seen, self.hint, self.encoding_hint))
        if self.capture is not None and now - self.last_arrival >= self.config.record_lag:
            await self.capture.flush()

    # -- lifecycle ---------------------------------------------------------------------------------

    def attach(self, send: Callable[[str], Awaitable[None]], owner: object, opened_at: float) -> None:
        """A socket carries this stream now (its first, or a reconnect); ``owner`` is that connection."""
        self.owner = owner
        self.guard.opened(opened_at)
        if self.state is SessionState.DETACHED:
            self.stats.reconnects += 1
            self.state = SessionState.ACTIVE
        self.detached_at = None
        if self.player is not None:
            self.player.attach(send)
        self.send = send

    async def detach(self, now: float) -> None:
        """The socket went without an end: keep everything for the module's reconnect."""
        if self.ending:
            return
        if self.capture is not None:
            await self.capture.flush()
        self.state = SessionState.DETACHED
        self.detached_at = now
        self.send = None
        if self.player is not None:
            self.player.detach()

    async def finish(self, reason: str, *, complete: bool) -> None:
        """End the session: the rest of the audio, then the recording closed (``complete`` or not).

        Once: a second caller (the reaper and a late close, a ``stop`` then its close) returns at once.
        """
        if self.end_reason is not None:
            return
        self.end_reason = reason
        try:
            if self.fmt is None and self._early:
                if self.dialect is Dialect.BINARY:
                    await self._default_binary_format()
                else:
                    await self.tick(self.clock() + 1.0)
            if self.capture is not None:
                await self.capture.flush()
        finally:
            self.state = SessionState.ENDED
            if self.player is not None:
                await self.player.close()
            if self.sink is not None:
                await (self.sink.finish("eof") if complete else self.sink.abort(reason))
            if self.fmt is not None:
                self.publish(self, "stopped", {"reason": reason})

    @property
    def ending(self) -> bool:
        """Ended or ending: no socket may join it any more."""
        return self.end_reason is not None

    # -- reporting ---------------------------------------------------------------------------------

    @property
    def jitter_ms(self) -> float:
        return self.capture.jitter_ms if self.capture else 0.0

    def lead(self) -> Lead:
        fmt = self.fmt
        rate, two_way = (fmt.rate, fmt.two_way) if fmt else (8000, False)
        jitter = self.capture.jitter_held_ms if self.capture else 0.0
        slip = self.player.pacer.recent_slip(self.clock()) * 1000 if self.player else 0.0
        return self.config.policy.lead(rate, two_way, jitter, slip)

    @property
    def recorded_ms(self) -> int:
        return self.capture.recorded_ms if self.capture else 0

    def public(self) -> dict[str, Any]:
        now = self.clock()
        lead = self.lead()
        player = self.player.public(now) if self.player else None
        return {
            "session_id": self.id,
            "state": self.state.value,
            "stream_id": self.stream_id,
            "call_id": self.call_id,
            "path": self.path,
            "format": self.fmt.public() if self.fmt else None,
            "recording_id": self.sink.id if self.sink else None,
            "recorded_ms": self.recorded_ms,
            **(self._capture_figures() if self.capture else {}),
            "lead_ms": lead.ms,
            "preset": lead.preset.value if lead.preset else "fixed",
            "underruns": (player["starved"] + player["slips"]) if player else 0,
            "buffered_ms": player["buffered_ms"] if player else 0,
            "reconnects": self.stats.reconnects,
            "chunks": self.stats.chunks,
            "bad_frames": self.stats.bad_frames,
            "playout": player,
        }

    def _capture_figures(self) -> dict[str, Any]:
        c = self.capture
        assert c is not None
        return {
            "jitter_ms": round(c.jitter_ms, 2),
            "jitter_held_ms": round(c.jitter_held_ms, 2),
            "jitter_peak_ms": round(c.jitter_peak_ms, 2),
            "gaps": c.gaps,
            "gap_ms": c.gap_ms,
            "late_dropped_ms": c.late_dropped_ms,
        }
