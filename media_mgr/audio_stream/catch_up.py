"""Audio read in one go after a session moved here from another instance; pure.

While the move runs (a request to the instance that held the session, a few statements there and
here), nobody reads the new socket: what the module sent meanwhile is read at once afterwards, so
the times it is read are not when it arrived, and the track clocks would take a burst for what the
module sent in real time (and could not tell the reconnect's gap from a stall). So that audio is
held until a message is read on time (the reader had to wait for it: the backlog is drained), and
then placed with each piece's arrival estimated back from that message along the media clock (the
module sends in real time), never later than it was read; whether those times mean anything is then
judged as for any audio, by our loop's lag when that message was read. Bounded in time and size:
what is held when either runs out is placed as read.
"""

from __future__ import annotations

from dataclasses import dataclass

from media_mgr.audio_stream.capture.clock import Chunk

CATCH_UP_SECONDS = 1.0  # after the move, audio is held at most this long
CATCH_UP_BYTES = 512 * 1024
WAITED = 0.01  # a message read this long after the one before was waited for: read on time


@dataclass(frozen=True)
class Piece:
    track: int
    position: int  # on the media clock, in sample frames
    pcm: bytes
    read: float  # when it was read


class CatchUp:
    def __init__(self, rate: int, moved_at: float) -> None:
        self.rate = rate
        self.until = moved_at + CATCH_UP_SECONDS
        self._last_read = moved_at
        self._held: list[Piece] = []
        self._bytes = 0
        self.done = False  # released: audio goes straight on (the window still says how reliable)

    def active(self, now: float) -> bool:
        return now <= self.until

    def hold(self, piece: Piece) -> bool:
        """True: keep it back, the backlog is being read. False: it was read on time (or the hold
        ran out, or was released): :meth:`release` it with what is held."""
        if self.done:
            return False
        waited = piece.read - self._last_read >= WAITED
        self._last_read = max(self._last_read, piece.read)
        if waited or not self.active(piece.read) or self._bytes + len(piece.pcm) > CATCH_UP_BYTES:
            return False
        self._held.append(piece)
        self._bytes += len(piece.pcm)
        return True

    def release(self, on_time: Piece | None) -> list[tuple[int, Chunk]]:
        """What is held, then ``on_time``, as chunks (track, chunk) with their estimated arrival."""
        out = []
        for p in self._held:
            arrival = (
                p.read
                if on_time is None
                else min(p.read, on_time.read - (on_time.position - p.position) / self.rate)
            )
            out.append((p.track, Chunk(p.position, p.pcm, arrival)))
        if on_time is not None:
            out.append((on_time.track, Chunk(on_time.position, on_time.pcm, on_time.read)))
        self._held, self._bytes, self.done = [], 0, True
        return out
