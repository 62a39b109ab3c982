"""Where each chunk of a track belongs in the recording: its media clock, plus the gaps it hides; pure.

The module's media clock (voipbit's ``chunk``/``timestamp``; the byte count in the binary dialect)
advances only for audio it sends. Audio queued while the socket could not write comes later as a
burst and is still on the clock; audio dropped while paused, reconnecting or in CNG is not, so the
clock alone would splice the call together and shorten it (reference A2.2, A3, A8).

Telling the two apart needs arrival times. The lateness of a chunk is ``arrival - media time``; its
floor is the network's best transit. A stall raises lateness for a while, then the burst brings it
back to the floor. A gap raises it for good, and after it chunks come at real-time pace. So when a
chunk is late by more than ``gap_threshold`` the clock holds it and what follows: if lateness falls
back, it was a stall and nothing moves; if after ``decide_after`` seconds chunks still arrive late at
about real-time pace, it was a gap, and the track's offset grows by the smallest lateness seen,
rounded to whole frames (voipbit drops whole 20 ms chunks). Held audio is bounded by ``max_hold``.
When our own process runs late (an overloaded event loop reads everything late, which looks exactly
like a gap), no gap is inferred: the media clock is trusted, never silence invented; and nothing is
held either, since holding would decide nothing (under saturation it also made every frame take the
slow way, which kept the process saturated).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

DRIFT = 200e-6  # how fast the lateness floor may creep up (clock drift between the switch and us)
CATCH_UP_RATIO = 1.5  # held audio arriving faster than this times real time is a burst, not a gap


@dataclass(slots=True)  # built per frame: a frozen dataclass costs 4x as much to build
class Chunk:
    """Audio as it arrived: ``media`` is its start on the stream's media clock, in sample frames."""

    media: int
    pcm: bytes
    arrival: float


@dataclass(slots=True)  # built per frame: a frozen dataclass costs 4x as much to build
class Placed:
    """A chunk with its place in the recording, in sample frames from the recording's start."""

    position: int
    pcm: bytes
    arrival: float


class ClockState(enum.Enum):
    STEADY = "steady"
    HOLDING = "holding"  # a late chunk came; stall or gap not decided yet


class TrackClock:
    """One track's media clock -> recording positions; ``feed`` returns what can be placed now."""

    def __init__(
        self,
        rate: int,
        frame_bytes: int,
        *,
        quantum: int,
        gap_threshold: float = 0.06,
        decide_after: float = 0.4,
        max_hold: float = 2.0,
    ) -> None:
        if rate <= 0 or frame_bytes <= 0 or quantum <= 0:
            raise ValueError("rate, frame size and quantum must be positive")
        self.rate = rate
        self.frame_bytes = frame_bytes  # bytes per sample frame (2 per channel)
        self.quantum = quantum  # gaps are whole multiples of this many sample frames
        self.gap_threshold = gap_threshold
        self.decide_after = decide_after
        self.max_hold = max_hold
        self.state = ClockState.STEADY
        self.offset = 0  # sample frames of hidden gaps inserted so far
        self.gaps = 0
        self._floor: float | None = None
        self._last_arrival = 0.0
        self._held: list[Chunk] = []

    def _lateness(self, chunk: Chunk) -> float:
        return chunk.arrival - (chunk.media + self.offset) / self.rate

    def _frames(self, chunk: Chunk) -> int:
        return len(chunk.pcm) // self.frame_bytes

    def feed(self, chunk: Chunk, *, timing_reliable: bool = True) -> list[Placed]:
        """``timing_reliable`` False: our own process is behind (its event loop late), so arrival
        times say nothing about the network: no gap is inferred, held audio goes by the media clock."""
        late = self._lateness(chunk)
        if self._floor is None:
            self._floor, self._last_arrival = late, chunk.arrival
            return [self._place(chunk)]
        if self.state is ClockState.STEADY:
            if late <= self._floor + self.gap_threshold:
                self._settle(late, chunk.arrival)
                return [self._place(chunk)]
            if not timing_reliable:  # we are the late one: nothing to decide, the media clock holds
                return [self._place(chunk)]
            self.state = ClockState.HOLDING
            self._held = [chunk]
            return []
        self._held.append(chunk)
        if late <= self._floor + self.gap_threshold:
            self._settle(late, chunk.arrival)
            return self._release()  # lateness fell back: a stall, the media clock was right
        held_for = chunk.arrival - self._held[0].arrival
        held_media = (chunk.media + self._frames(chunk) - self._held[0].media) / self.rate
        if held_media > self.max_hold + held_for:
            return self._release()  # a long burst still draining: trust the media clock
        if held_for < self.decide_after:
            return []
        if not timing_reliable:
            return self._release()
        if held_media <= CATCH_UP_RATIO * held_for:
            smallest = min(self._lateness(c) for c in self._held)
            gap = round((smallest - self._floor) * self.rate / self.quantum) * self.quantum
            if gap > 0:
                self.offset += gap
                self.gaps += 1
            self._last_arrival = chunk.arrival
            return self._release()
        if held_for >= self.max_hold:
            return self._release()
        return []

    def on_time(self, media: int, arrival: float) -> int | None:
        """``feed``'s common case without building a chunk: steady, and this one not late. Its
        position, the clock moved on exactly as ``feed`` would; None: call ``feed``."""
        floor = self._floor
        if floor is None or self.state is not ClockState.STEADY:
            return None
        position = media + self.offset
        late = arrival - position / self.rate
        if late > floor + self.gap_threshold:
            return None
        last = self._last_arrival  # ``_settle``, inline: this runs for every frame
        crept = floor + DRIFT * (arrival - last) if arrival > last else floor
        self._floor = late if late < crept else crept
        self._last_arrival = arrival
        return position

    def by_media(self, media: int) -> int | None:
        """``feed``'s case for a late chunk read while our own process runs late, without building a
        chunk: steady, it is placed by the media clock, nothing held and the floor left alone (its
        lateness is ours). None: call ``feed``."""
        if self._floor is None or self.state is not ClockState.STEADY:
            return None
        return media + self.offset

    def release(self) -> list[Placed]:
        """Place whatever is held as the media clock says (the stream is ending or detaching)."""
        return self._release()

    def resume_state(self, to_wall: float) -> dict[str, float | int | None]:
        """Gaps so far and the lateness floor, arrival times moved onto the wall clock by adding
        ``to_wall``, for another instance to go on from (call it after ``release``)."""
        floor = None if self._floor is None else self._floor + to_wall
        return {
            "offset": self.offset,
            "gaps": self.gaps,
            "floor": floor,
            "last": self._last_arrival + to_wall,
        }

    def resume(self, state: dict[str, float | int | None], from_wall: float) -> None:
        """Go on from :meth:`resume_state` taken elsewhere; ``from_wall`` moves wall times onto ours."""
        self.offset, self.gaps = int(state.get("offset") or 0), int(state.get("gaps") or 0)
        floor, last = state.get("floor"), state.get("last")
        self._floor = None if floor is None else float(floor) + from_wall
        self._last_arrival = float(last or 0.0) + from_wall

    @property
    def held_bytes(self) -> int:
        return sum(len(c.pcm) for c in self._held)

    def _settle(self, late: float, arrival: float) -> None:
        assert self._floor is not None
        crept = self._floor + DRIFT * max(0.0, arrival - self._last_arrival)
        self._floor = min(late, crept)
        self._last_arrival = arrival

    def _release(self) -> list[Placed]:
        placed = [self._place(c) for c in self._held]
        self._held = []
        self.state = ClockState.STEADY
        return placed

    def _place(self, chunk: Chunk) -> Placed:
        return Placed(chunk.media + self.offset, chunk.pcm, chunk.arrival)
