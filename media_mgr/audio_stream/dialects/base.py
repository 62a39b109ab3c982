"""The one shape every dialect has (uvicorn's one class per protocol implementation).

A ``Dialect`` is created for a stream when its first frame shows which one it speaks, and lives as
long as the stream's session (across reconnects). It turns frames into the events of ``events.py``
(sans-I/O), says which session a first frame belongs to, learns the stream's format, places audio
on the stream's media clock, and builds the ``PlayEncoder`` that writes playback to its module.
Endpoint, session, capture, player and service only ever talk to this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from media_mgr.audio_stream.events import Audio, Event, Media
from media_mgr.audio_stream.formats import FormatHint, StreamFormat


@dataclass(frozen=True)
class Join:
    """Which session a connection's first audio or metadata belongs to."""

    key: str  # what every connection of the same stream repeats (URL, stream id)
    rejoin: bool = False  # look for a session waiting for a socket with this key
    takeover: bool = False  # ... or one still attached but silent (its socket died unseen)
    metadata: str | None = None  # ... whose metadata frame was this very text


@dataclass(slots=True)  # built per frame: a frozen dataclass costs 4x as much to build
class Placement:
    """Audio put on the stream's media clock: track index, position in sample frames, s16le PCM."""

    track: int
    position: int
    pcm: bytes
    irregular: bool = False  # not the size this dialect's frames have (counted, logged once)


class PlayEncoder(ABC):
    """How queued media is written to one dialect's module.

    ``acknowledged``: checkpoints are messages of their own that the module acknowledges once heard
    (and ``clear`` once done), so the pacer can also send its own sync marks; otherwise a checkpoint
    rides on the audio it ends and is reported when its playout is estimated to end.
    """

    acknowledged: ClassVar[bool]
    step: float | None = None  # seconds of audio per message; None: one pacer frame

    @abstractmethod
    def audio(self, pcm: bytes, rate: int, checkpoint: str | None = None) -> str:
        """One message of s16le mono audio; ``checkpoint`` only where it rides on the audio."""

    @abstractmethod
    def checkpoint(self, name: str) -> str:
        """A mark the module acknowledges once the audio before it is heard (``acknowledged`` only)."""

    @abstractmethod
    def clear(self) -> str:
        """Barge-in: the module drops what it holds."""


class Dialect(ABC):
    """One stream's wire dialect: frames to events, format discovery, playback encoding."""

    name: ClassVar[str]  # in metrics, events ("Dialect") and ``GET /v1/streams``
    subprotocols: ClassVar[tuple[str, ...]]  # echoed when a module offers one

    def __init__(self, hint: FormatHint, encoding_hint: str | None, *, metadata_timeout: float) -> None:
        self.hint = hint  # what the URL query says about the format
        self.encoding_hint = encoding_hint
        self.metadata_timeout = metadata_timeout

    # -- frames -> events ----------------------------------------------------------------------------

    @abstractmethod
    def parse(self, text: str | None, data: bytes | None) -> Event:
        """One WebSocket message -> one event; ``BadInput`` for what cannot be used."""

    @abstractmethod
    def join(self, url: str, event: Event) -> Join:
        """The session a connection's first ``Start``, audio or ``Metadata`` belongs to."""

    # -- format discovery ----------------------------------------------------------------------------

    @abstractmethod
    def learn(self, event: Event) -> StreamFormat | None:
        """The format, once this event (start, metadata, early audio) makes it known; else None."""

    @abstractmethod
    def settle(self, waited: float | None) -> StreamFormat | None:
        """The format after ``waited`` seconds of audio without one, if it is time to decide;
        ``None``: the stream ends or holds too much early audio, so decide now (never None then)."""

    # -- audio ---------------------------------------------------------------------------------------

    @abstractmethod
    def place(self, event: Media | Audio, fmt: StreamFormat) -> Placement:
        """An audio message -> its track, its position on the media clock and its PCM."""

    def resume_state(self) -> dict[str, Any]:
        """Where this stream's media clock stands, as JSON: another instance continues the stream
        from it when the module reconnects there (``audio_stream/handover.py``)."""
        return {}

    def resume(self, state: dict[str, Any]) -> None:
        """Continue the media clock :meth:`resume_state` described (on the instance it moved to)."""
        del state  # a dialect whose clock is in every message has nothing to take

    # -- playback ------------------------------------------------------------------------------------

    @abstractmethod
    def cannot_play(self, fmt: StreamFormat) -> str | None:
        """Why media cannot be played into this stream, or None."""

    @abstractmethod
    def play_rate(self, fmt: StreamFormat) -> int:
        """The rate media is played at into this stream."""

    @abstractmethod
    def encoder(self, subprotocol: str | None) -> PlayEncoder:
        """How to write playback to this module (``subprotocol``: the one the socket agreed on)."""
