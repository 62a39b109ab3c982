"""The session's hot path: audio frames given their place on the media clock as they arrive, kept
with their arrival times, and placed together.

Placed one by one as they came, 1000 sessions' clocks, jitter estimators and windows were each read
from cold memory for every frame (in-process, 13.4 to 14.1 µs of Python a frame, against 9.5 to 11.1
placed a session's dozen at a time). What is kept is placed by the session's tick (every 0.25 s), by
anything that reads or moves the capture (a frame that goes the usual way, a detach, the end), or
once ``ARRIVALS_MAX`` frames are kept; the flood guard refuses when they are placed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from media_mgr.audio_stream.dialects.binary import BinaryDialect
from media_mgr.audio_stream.dialects.voipbit import VoipbitDialect
from media_mgr.audio_stream.events import BadInput, Track

if TYPE_CHECKING:
    from media_mgr.audio_stream.capture.pipeline import Capture
    from media_mgr.audio_stream.catch_up import CatchUp
    from media_mgr.audio_stream.dialects.base import Dialect
    from media_mgr.audio_stream.flood import FloodGuard
    from media_mgr.audio_stream.formats import StreamFormat
    from media_mgr.audio_stream.session_config import Stats

ARRIVALS_MAX = 32  # frames kept at most before they are placed ...
ARRIVALS_MAX_BYTES = 64 * 1024  # ... or this much audio


class Arrivals:
    """Mixed into ``session.Session``, whose state it reads."""

    fmt: StreamFormat | None
    capture: Capture | None
    dialect: Dialect
    catch_up: CatchUp | None
    stream_id: str | None
    guard: FloodGuard
    stats: Stats
    last_arrival: float
    _first_arrival: float | None

    def __init__(self) -> None:
        self._arrivals: list[tuple[int, int, bytes, float]] = []
        self._arrivals_bytes = 0

    def media_now(self, track: Track, chunk: int, pcm: bytes, stream_id: object, now: float) -> bool:
        """voipbit's hot path (``voipbit.media_fast``): the common case kept, no event built;
        False, nothing done, for any other (this stream's id, a regular L16 chunk, no catch-up)."""
        fmt, dialect = self.fmt, self.dialect
        catching_up = self.catch_up is not None and not self.catch_up.done
        if stream_id != self.stream_id or catching_up or not isinstance(dialect, VoipbitDialect):
            return False
        assert fmt is not None
        position = dialect.position_of(track, chunk, len(pcm), fmt)
        if position is None:
            return False
        self._arrive(fmt.tracks.index(track), position, pcm, now)
        return True

    def audio_now(self, pcm: bytes, now: float) -> bool:
        """The binary dialect's hot path: a frame of whole sample frames kept, no event built;
        False, nothing done, for any other (a split sample carried, a catch-up holding audio)."""
        fmt, dialect = self.fmt, self.dialect
        if (self.catch_up is not None and not self.catch_up.done) or not isinstance(dialect, BinaryDialect):
            return False
        assert fmt is not None
        position = dialect.position_of(len(pcm), fmt)
        if position is None:
            return False
        self._arrive(0, position, pcm, now)
        return True

    def _arrive(self, track: int, position: int, pcm: bytes, now: float) -> None:
        """A hot-path frame, its place on the media clock known, kept to be placed with the frames
        after it (at most ``ARRIVALS_MAX``)."""
        self.last_arrival = now
        arrivals = self._arrivals
        arrivals.append((track, position, pcm, now))
        self._arrivals_bytes += len(pcm)
        if len(arrivals) >= ARRIVALS_MAX or self._arrivals_bytes >= ARRIVALS_MAX_BYTES:
            self.place_arrivals()

    def place_arrivals(self) -> None:
        """Place the hot path's frames kept since the last call, in order, with their arrival times.
        Raises the flood guard's ``BadInput`` (the frames after the flooding one are dropped)."""
        arrivals = self._arrivals
        if not arrivals:
            return
        self._arrivals, self._arrivals_bytes = [], 0
        fmt, capture, guard, stats = self.fmt, self.capture, self.guard, self.stats
        assert fmt is not None
        assert capture is not None
        rate, block = fmt.rate, [2 * c for c in fmt.track_channels]
        self._first_arrival = self._first_arrival or arrivals[0][3]
        for track, position, pcm, now in arrivals:
            size = len(pcm)
            stats.chunks += 1
            stats.bytes_in += size
            guard.media(position / rate, (position + size // block[track]) / rate, now)
            capture.place_at(track, position, pcm, now)

    def place_what_came(self) -> None:
        """The socket is gone or the stream ends: what came is placed; a flood's rest is dropped."""
        try:
            self.place_arrivals()
        except BadInput:
            self._arrivals, self._arrivals_bytes = [], 0
