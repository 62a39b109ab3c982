"""What the two dialects turn frames into: one set of typed events the session understands; pure.

A dialect (``dialects/voipbit.py``, ``dialects/binary.py``) is sans-I/O: a WebSocket message in, one of these
out, or ``BadInput`` saying what was wrong and whether the session can go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["l16", "mulaw"]
Track = Literal["inbound", "outbound"]
TRACKS: tuple[Track, ...] = ("inbound", "outbound")
FRAME_MS = 20


class BadInput(Exception):
    """A message we cannot use. ``fatal`` ones end the connection with ``close_code``."""

    def __init__(self, reason: str, *, fatal: bool = False, close_code: int = 1003) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fatal = fatal
        self.close_code = close_code


@dataclass(frozen=True)
class Start:
    """voipbit ``start``: the first frame of a stream's first connection (reference A2.1)."""

    call_id: str
    stream_id: str
    tracks: tuple[Track, ...]
    encoding: Encoding
    rate: int
    extra_headers: str | None = None


@dataclass(slots=True)  # built per frame: a frozen dataclass costs 4x as much to build
class Media:
    """voipbit ``media``: one 20 ms chunk of one track; ``payload`` is the decoded audio bytes."""

    stream_id: str | None
    track: Track
    chunk: int | None
    timestamp_ms: int | None
    payload: bytes

    @property
    def size(self) -> int:
        return len(self.payload)


@dataclass(frozen=True)
class Stop:
    """voipbit ``stop``: only on graceful shutdown; a bare close 1000 is the common end."""

    call_id: str | None


@dataclass(frozen=True)
class Played:
    """voipbit ``playedStream``: playout reached a checkpoint."""

    name: str


@dataclass(frozen=True)
class Cleared:
    """voipbit ``media.cleared``: the module emptied its playout buffer."""


@dataclass(frozen=True)
class IncorrectPayload:
    """voipbit ``incorrectPayload``: the module refused one of our messages (at most once per stream)."""

    payload: str


@dataclass(frozen=True)
class Text:
    """Text that is no protocol event: ``send_text``, amigniter's ``stop <text>``, unknown JSON."""

    text: str
    note: str


@dataclass(slots=True)  # built per frame: a frozen dataclass costs 4x as much to build
class Audio:
    """Binary dialect: raw s16le, ``channels`` interleaved (stereo: caller left)."""

    pcm: bytes

    @property
    def size(self) -> int:
        return len(self.pcm)


@dataclass(frozen=True)
class Metadata:
    """Binary dialect: the metadata text frame, and what it says about the format, if anything."""

    text: str
    rate: int | None = None
    channels: int | None = None
    call_id: str | None = None


@dataclass(frozen=True)
class EndOfStream:
    """mod_audio_fork's graceful end: a zero-length binary frame."""


Event = Start | Media | Stop | Played | Cleared | IncorrectPayload | Text | Audio | Metadata | EndOfStream
