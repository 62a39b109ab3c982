"""One session's audio on its way to the recording: track clocks, jitter, assembly, the sink.

Per track, a chunk goes through its ``TrackClock`` (which may hold it while telling a stall from a
gap), is measured by that track's ``InterarrivalJitter``, and is written into the ``Assembler``.
What every track has reached goes to the sink at once; a track that lags (the other one is in CNG,
or held) is not waited for longer than ``record_lag``, so audio reaches the recording, which
commits within a second, at most ``record_lag`` after it arrived.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from media_mgr.audio_stream.capture.assembler import Assembler
from media_mgr.audio_stream.capture.clock import Chunk, TrackClock
from media_mgr.audio_stream.capture.jitter import InterarrivalJitter
from media_mgr.audio_stream.formats import StreamFormat

log = logging.getLogger("media_mgr.audio_stream")

WINDOW_SPARE_SECONDS = 8.0  # assembler room beyond the lag and the hold, for tracks far apart


class Sink(Protocol):
    """Where the PCM goes: ``recording.ingest.Ingest`` (WAV, committed within a second)."""

    @property
    def id(self) -> str: ...

    async def write(self, data: bytes) -> bool: ...

    async def finish(self, reason: str = "eof") -> object: ...

    async def abort(self, reason: str) -> object: ...


class Capture:
    def __init__(
        self,
        fmt: StreamFormat,
        sink: Sink | None,
        *,
        gap_threshold: float,
        gap_window: float,
        max_hold: float,
        record_lag: float,
        timing_reliable: Callable[[], bool] = lambda: True,
        label: str = "",
    ) -> None:
        self.fmt = fmt
        self.sink = sink  # None while the recording opens: what is placed waits in the assembler
        self.label = label
        self.timing_reliable = timing_reliable
        self.lag_frames = int(record_lag * fmt.rate)
        self.clocks = [
            TrackClock(fmt.rate, 2 * channels, quantum=fmt.frame_samples, gap_threshold=gap_threshold,
                       decide_after=gap_window, max_hold=max_hold)
            for channels in fmt.track_channels
        ]  # fmt: skip
        self.jitter = [InterarrivalJitter() for _ in fmt.track_channels]
        ahead = int(fmt.rate * (record_lag + max_hold + WINDOW_SPARE_SECONDS))
        self.assembler = Assembler(list(fmt.track_channels), max_ahead=ahead)
        self.recorded_frames = 0
        self.open = True  # False once the recording reached a limit

    async def put(self, track: int, chunk: Chunk) -> None:
        self.place(track, chunk)
        await self._drain(force=False)

    def place(self, track: int, chunk: Chunk) -> None:
        """The hot path: the chunk placed, nothing awaited; ``drain`` hands it to the recording."""
        for p in self.clocks[track].feed(chunk, timing_reliable=self.timing_reliable()):
            self.jitter[track].update(p.arrival, p.position / self.fmt.rate)
            self.assembler.put(track, p.position, p.pcm)

    def place_at(self, track: int, media: int, pcm: bytes, arrival: float) -> None:
        """``place`` for the hot path: no chunk built when the track's clock takes it at once."""
        clock = self.clocks[track]
        position = clock.on_time(media, arrival)
        if position is None and (self.timing_reliable() or (position := clock.by_media(media)) is None):
            self.place(track, Chunk(media, pcm, arrival))  # held, or the first of the track
            return
        self.jitter[track].update(arrival, position / self.fmt.rate)
        self.assembler.put(track, position, pcm)

    async def drain(self) -> None:
        """What every track has reached (or what lags ``record_lag``) goes to the recording."""
        await self._drain(force=False)

    async def flush(self) -> None:
        """Everything held and assembled goes to the recording (a pause, a detach, the end)."""
        for track, clk in enumerate(self.clocks):
            for p in clk.release():
                self.jitter[track].update(p.arrival, p.position / self.fmt.rate)
                self.assembler.put(track, p.position, p.pcm)
        await self._drain(force=True)

    async def _drain(self, *, force: bool) -> None:
        if self.sink is None:
            return
        asm = self.assembler
        upto = asm.furthest if force else max(asm.complete, asm.furthest - self.lag_frames)
        data = asm.take(upto)
        if not data or not self.open:
            return
        self.recorded_frames += len(data) // asm.frame_bytes
        if not await self.sink.write(data):
            self.open = False
            log.warning("audio_stream recording reached its limit; the stream goes on unrecorded",
                        extra={"session": self.label, "recording_id": self.sink.id})  # fmt: skip

    def resume_state(self, to_wall: float) -> dict[str, Any]:
        """What another instance needs to go on recording this stream where it stands (after
        ``flush``): each track's clock and the recording position reached."""
        clocks = [c.resume_state(to_wall) for c in self.clocks]
        return {"clocks": clocks, "head": self.assembler.head, "recorded": self.recorded_frames}

    def resume(self, state: dict[str, Any], from_wall: float) -> None:
        """Go on from :meth:`resume_state` (the recording already holds ``head`` frames)."""
        for clk, clock_state in zip(self.clocks, state["clocks"], strict=True):
            clk.resume(clock_state, from_wall)
        head = int(state["head"])
        self.assembler.head = head
        for track in self.assembler.tracks:
            track.end = head
        self.recorded_frames = int(state["recorded"])

    # -- figures -----------------------------------------------------------------------------------

    def figures(self) -> dict[str, Any]:
        """What ``GET /v1/streams`` shows of the capture."""
        return {
            "jitter_ms": round(self.jitter_ms, 2),
            "jitter_held_ms": round(self.jitter_held_ms, 2),
            "jitter_peak_ms": round(self.jitter_peak_ms, 2),
            "gaps": self.gaps,
            "gap_ms": self.gap_ms,
            "late_dropped_ms": self.late_dropped_ms,
        }

    @property
    def jitter_ms(self) -> float:
        """RFC 3550 J, the worse of the tracks."""
        return max(j.value_ms for j in self.jitter)

    @property
    def jitter_held_ms(self) -> float:
        """J's recent peak: what sizes the lead."""
        return max(j.held_ms for j in self.jitter)

    @property
    def jitter_peak_ms(self) -> float:
        return max(j.peak for j in self.jitter) * 1000

    @property
    def gaps(self) -> int:
        return sum(c.gaps for c in self.clocks)

    @property
    def gap_ms(self) -> int:
        return max(c.offset for c in self.clocks) * 1000 // self.fmt.rate

    @property
    def recorded_ms(self) -> int:
        return self.recorded_frames * 1000 // self.fmt.rate

    @property
    def late_dropped_ms(self) -> int:
        return self.assembler.dropped_frames * 1000 // self.fmt.rate
