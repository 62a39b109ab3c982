"""One stream of one call: its media clock, its recording, its playout; lives across reconnects.

A session is created by the first connection of a stream and outlives it: voipbit reconnects after
any close without repeating ``start`` (reference A1.8), and the new socket joins the same session,
so the recording goes on. Audio goes media clock -> ``TrackClock`` (bursts keep their place, gaps
become silence) -> ``Assembler`` (tracks side by side, inbound left) -> the recording, which commits
to PostgreSQL within a second. States: OPENING (format not known yet, or its recording opening) ->
ACTIVE <-> DETACHED (socket gone, waiting for the module) -> ENDED.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from media_mgr.audio_stream.arrivals import Arrivals
from media_mgr.audio_stream.capture.pipeline import Capture, Sink
from media_mgr.audio_stream.catch_up import CatchUp, Piece
from media_mgr.audio_stream.dialects.base import Dialect
from media_mgr.audio_stream.events import Audio, BadInput, Media, Metadata, Start
from media_mgr.audio_stream.flood import FloodGuard
from media_mgr.audio_stream.formats import StreamFormat
from media_mgr.audio_stream.playout.buffering import Lead
from media_mgr.audio_stream.playout.player import Player
from media_mgr.audio_stream.session_config import SessionConfig as SessionConfig  # imported from here too
from media_mgr.audio_stream.session_config import Stats

log = logging.getLogger("media_mgr.audio_stream")

EARLY_LIMIT_BYTES = 256 * 1024  # audio held while the format is not known yet


class SessionState(enum.Enum):
    OPENING = "opening"
    ACTIVE = "active"
    DETACHED = "detached"
    ENDED = "ended"


OpenSink = Callable[["Session", StreamFormat], Awaitable[Sink]]
Publish = Callable[["Session", str, dict[str, Any]], None]


class Session(Arrivals):
    def __init__(
        self,
        session_id: str,
        key: str,
        dialect: Dialect,
        *,
        path: str,
        peer: str,
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
        self.on_change: Callable[[Session], None] | None = None  # state changed: the fleet's row follows
        self.catch_up: CatchUp | None = None  # just moved here from another instance: see catch_up.py
        self.stats = Stats()
        self.guard = FloodGuard(config.flood_allowance, config.messages_per_second)
        self.detached_at: float | None = None
        self.last_arrival = clock()
        self._first_arrival: float | None = None
        self.capture: Capture | None = None
        self.hot = False  # audio may take the hot path: the format known, the early audio placed
        super().__init__()  # Arrivals: hot-path audio kept, not placed yet
        self._early: list[tuple[Media | Audio, float]] = []
        self._opening: asyncio.Task[None] | None = None  # the recording being opened
        self.open_failed: Exception | None = None
        self._early_bytes = 0

    # -- format ------------------------------------------------------------------------------------

    async def on_start(self, start: Start) -> None:
        """voipbit ``start``: the call's ids, and the format."""
        self.call_id, self.stream_id, self.extra_headers = start.call_id, start.stream_id, start.extra_headers
        await self._learnt(self.dialect.learn(start))

    async def on_metadata(self, meta: Metadata) -> None:
        """Binary dialect: the metadata frame, which may name the format (or come too late to)."""
        self.metadata = meta
        self.call_id = self.call_id or meta.call_id
        if self.fmt is None:
            await self._learnt(self.dialect.learn(meta))
        elif meta.rate is not None and meta.rate != self.fmt.rate:
            log.warning(
                "audio_stream metadata names another rate than the one in use; keeping it",
                extra={"session": self.id, "metadata_rate": meta.rate, "rate": self.fmt.rate},
            )

    async def _learnt(self, fmt: StreamFormat | None) -> None:
        """The format is known: the audio held placed, the recording opening. Nothing waits for it:
        audio placed meanwhile (arrival times kept) waits in the capture's bounded window."""
        if fmt is None or self.fmt is not None:
            return
        if fmt.learnt_from == "default":
            log.warning(
                "audio_stream stream names no rate (URL ?rate= or metadata); assuming 8000 Hz",
                extra={"session": self.id, "channels": fmt.channels},
            )
        c = self.config
        self.fmt = fmt
        self.capture = Capture(
            fmt, None, gap_threshold=c.gap_threshold, gap_window=c.gap_window, max_hold=c.max_hold,
            record_lag=c.record_lag, timing_reliable=self.timing_reliable, label=self.id,
        )  # fmt: skip
        early, self._early, self._early_bytes = self._early, [], 0
        for item, arrival in early:
            self._place_now(item, arrival)
        self.hot = True
        self._opening = asyncio.get_running_loop().create_task(self._open(fmt), name="audio_stream.open")

    async def _open(self, fmt: StreamFormat) -> None:
        """Batched with other sessions' (``recording/opening.py``); a failure is raised by ``tick``."""
        try:
            sink = await self.open_sink(self, fmt)
        except Exception as exc:
            self.hot = False
            self.open_failed = exc
            return
        assert self.capture is not None
        self.sink = self.capture.sink = sink
        if self.state is SessionState.OPENING:  # not DETACHED: the socket went meanwhile, the reaper waits
            self.state = SessionState.ACTIVE
        self._changed()
        self.publish(self, "started", {})

    # -- audio in ----------------------------------------------------------------------------------

    async def on_audio(self, audio: Media | Audio, now: float) -> None:
        """One audio message, whichever dialect: held until the format is known, then placed."""
        self._arrived(now, audio.size)
        if isinstance(audio, Media) and self.stream_id is None and audio.stream_id:
            self.stream_id = audio.stream_id
        if self.fmt is not None:
            await self._place(audio, now)
            return
        self._early.append((audio, now))
        self._early_bytes += audio.size
        fmt = self.dialect.learn(audio)
        if fmt is None and self._early_bytes > EARLY_LIMIT_BYTES:
            fmt = self.dialect.settle(None)
        await self._learnt(fmt)

    def on_audio_now(self, audio: Media | Audio, now: float) -> None:
        """The hot path (``frame_now``): placed without awaiting; the recording gets it at ``tick``."""
        self.place_arrivals()
        self._arrived(now, audio.size)
        if self.stream_id is None and isinstance(audio, Media) and audio.stream_id:
            self.stream_id = audio.stream_id
        self._place_now(audio, now)

    async def _place(self, audio: Media | Audio, now: float) -> None:
        self.place_arrivals()
        self._place_now(audio, now)
        assert self.capture is not None
        await self.capture.drain()

    def _place_now(self, audio: Media | Audio, now: float) -> None:
        fmt, capture = self.fmt, self.capture
        assert fmt is not None
        assert capture is not None
        placed = self.dialect.place(audio, fmt)
        if placed.irregular:
            self.stats.odd_sizes += 1
            if self.stats.odd_sizes == 1:
                log.warning(
                    "audio_stream message of an irregular size (not one 20 ms chunk, or a split sample)",
                    extra={"session": self.id, "bytes": audio.size},
                )
        frames = len(placed.pcm) // (2 * fmt.track_channels[placed.track])
        self.guard.media(placed.position / fmt.rate, (placed.position + frames) / fmt.rate, now)
        if self.catch_up is not None and not self.catch_up.done:
            piece = Piece(placed.track, placed.position, placed.pcm, now)
            if not self.catch_up.hold(piece):
                self._caught_up(piece)
            return
        capture.place_at(placed.track, placed.position, placed.pcm, now)

    def _caught_up(self, on_time: Piece | None) -> None:
        """Place what was held since the move (see catch_up.py), then go on reading as usual."""
        catch_up = self.catch_up
        if catch_up is not None and not catch_up.done and self.capture is not None:
            for track, chunk in catch_up.release(on_time):
                self.capture.place(track, chunk)

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
        """Housekeeping between frames: a format that never came, audio of a paused stream."""
        if self.open_failed is not None:
            raise self.open_failed
        self.place_arrivals()
        if self.fmt is None and self._first_arrival is not None:
            await self._learnt(self.dialect.settle(now - self._first_arrival))
        holding = self.catch_up is not None and not self.catch_up.done
        if holding and self.catch_up is not None and not self.catch_up.active(now):
            self._caught_up(None)
            holding = False
        if self.capture is not None:
            if now - self.last_arrival >= self.config.record_lag and not holding:
                await self.capture.flush()
            else:
                await self.capture.drain()  # what the hot path placed since the last tick

    # -- lifecycle ---------------------------------------------------------------------------------

    def attach(self, send: Callable[[str], Awaitable[None]], owner: object, opened_at: float) -> None:
        """A socket carries this stream now (its first, or a reconnect); ``owner`` is that connection."""
        self.owner = owner
        self.guard.opened(opened_at)
        if self.state is SessionState.DETACHED:
            self.stats.reconnects += 1
            self.state = SessionState.ACTIVE
            self._changed()
        self.detached_at = None
        if self.player is not None:
            self.player.attach(send)
        self.send = send

    async def detach(self, now: float) -> None:
        """The socket went without an end: keep everything for the module's reconnect."""
        if self.ending:
            return
        self.place_what_came()
        self._caught_up(None)
        if self.capture is not None:
            await self.capture.flush()
        self.state = SessionState.DETACHED
        self.detached_at = now
        self.send = None
        if self.player is not None:
            self.player.detach()
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    async def finish(self, reason: str, *, complete: bool) -> None:
        """End the session: the rest of the audio, then the recording closed (``complete`` or not).
        Once: a second caller (the reaper and a late close, a ``stop`` then its close) returns at once."""
        if self.end_reason is not None:
            return
        self.end_reason = reason
        try:
            if self.fmt is None and self._early:
                await self._learnt(self.dialect.settle(None))
            if self._opening is not None:
                await asyncio.shield(self._opening)  # its audio goes into it, then it is closed
            self.place_what_came()
            self._caught_up(None)
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
            **(self.capture.figures() if self.capture else {}),
            "lead_ms": lead.ms,
            "preset": lead.preset.value if lead.preset else "fixed",
            "underruns": (player["starved"] + player["slips"]) if player else 0,
            "buffered_ms": player["buffered_ms"] if player else 0,
            "reconnects": self.stats.reconnects,
            "chunks": self.stats.chunks,
            "bad_frames": self.stats.bad_frames,
            "playout": player,
        }
