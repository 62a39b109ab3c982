"""A peer may not send audio faster than real time, nor chatter without end; pure.

The module captures audio in real time, so its media clock can only be ahead of our wall clock by
what it captured before its socket opened (amigniter flushes frames queued during the handshake,
at most its 1 s connect timeout; reference B3). A burst after a stall only catches up. So media
more than ``allowance`` seconds ahead of the time since the socket was accepted is a flood.
Other messages (text, bad frames) go through a token bucket.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from media_mgr.audio_stream.events import BadInput

POLICY_VIOLATION = 1008


@dataclass(slots=True)
class FloodGuard:
    allowance: float = 2.0
    messages_per_second: float = 50.0
    burst: float = 200.0
    _origin: float | None = None
    _opened: float | None = None
    _tokens: float = field(default=-1.0)
    _refilled: float = 0.0

    def opened(self, at: float) -> None:
        """When the stream's first socket was accepted: nothing it sends was captured much before."""
        if self._opened is None:
            self._opened = at

    def media(self, media_start: float, media_end: float, now: float) -> None:
        """A frame covering ``[media_start, media_end)`` seconds of the stream's media clock.

        The origin is taken from the accept time, not from when the first frame was processed: a
        server that is behind would otherwise see the module's real-time audio as running ahead.
        """
        if self._origin is None:
            self._origin = (self._opened if self._opened is not None else now) - media_start
        ahead = media_end - (now - self._origin)
        if ahead > self.allowance:
            raise BadInput(
                f"media {ahead:.1f} s ahead of real time (more than {self.allowance:g} s): a flood",
                fatal=True,
                close_code=POLICY_VIOLATION,
            )

    def message(self, now: float) -> None:
        if self._tokens < 0:
            self._tokens, self._refilled = self.burst, now
        self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.messages_per_second)
        self._refilled = now
        self._tokens -= 1
        if self._tokens < 0:
            raise BadInput(
                f"more than {self.messages_per_second:g} non-audio messages a second",
                fatal=True,
                close_code=POLICY_VIOLATION,
            )
