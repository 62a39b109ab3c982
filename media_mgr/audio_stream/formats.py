"""What a stream carries (dialect, encoding, rate, tracks), however it was learnt; pure.

voipbit says it in ``start``. A voipbit stream that reconnects to us without a ``start`` (it never
repeats one, reference A1.8) still shows it: every payload is exactly 20 ms, so its length gives
the rate (and mu-law at 160 bytes), and ``both`` streams alternate outbound then inbound in each tick.
The binary dialect says nothing in its frames: the URL query or the metadata must (``binary.py``),
else amigniter's default applies: 8 kHz mono.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from media_mgr.audio_stream.binary import FormatHint
from media_mgr.audio_stream.events import FRAME_MS, TRACKS, Encoding, Start, Track

_L16_SIZES = {320 * r // 8000: r for r in (8000, 16000, 24000, 32000, 48000)}
DEFAULT_BINARY_RATE = 8000


class Dialect(enum.Enum):
    VOIPBIT = "voipbit"
    BINARY = "binary"


@dataclass(frozen=True)
class StreamFormat:
    """``tracks``: voipbit's per-track mono streams; a binary stereo stream is one stereo track."""

    dialect: Dialect
    encoding: Encoding
    rate: int
    tracks: tuple[Track, ...]
    channels: int
    learnt_from: str

    @property
    def two_way(self) -> bool:
        """Both directions of the call are in the stream: what the buffer presets call bidirectional."""
        return self.channels == 2

    @property
    def track_channels(self) -> list[int]:
        """Channels per track, as the recording assembler takes them."""
        if self.dialect is Dialect.BINARY:
            return [self.channels]
        return [1] * len(self.tracks)

    @property
    def frame_samples(self) -> int:
        return self.rate * FRAME_MS // 1000

    def chunk_bytes(self) -> int:
        """Bytes of one voipbit 20 ms payload."""
        return self.frame_samples * (1 if self.encoding == "mulaw" else 2)

    def public(self) -> dict[str, object]:
        return {
            "dialect": self.dialect.value,
            "encoding": self.encoding,
            "rate": self.rate,
            "tracks": list(self.tracks),
            "channels": self.channels,
            "from": self.learnt_from,
        }


def from_start(start: Start) -> StreamFormat:
    tracks = tuple(t for t in TRACKS if t in start.tracks)  # recording order: inbound left
    return StreamFormat(Dialect.VOIPBIT, start.encoding, start.rate, tracks, len(tracks), "start")


def guess_voipbit(
    payload_bytes: int, seen: list[Track], hint: FormatHint, encoding: str | None
) -> StreamFormat:
    """A stream that began with ``media``: format from the payload size, tracks from the first messages."""
    tracks = tuple(t for t in TRACKS if t in seen) or ("inbound",)
    enc: Encoding = "mulaw" if encoding == "mulaw" else "l16"
    rate = hint.rate
    if rate is None:
        if payload_bytes == 160 and encoding != "l16":
            enc, rate = "mulaw", 8000
        else:
            rate = _L16_SIZES.get(payload_bytes, 8000)
    return StreamFormat(Dialect.VOIPBIT, enc, rate, tracks, len(tracks), "payload size")


def binary_format(url: FormatHint, metadata: FormatHint | None) -> StreamFormat | None:
    """The binary stream's format when the URL or the metadata give a rate; else None (wait or default)."""
    meta = metadata or FormatHint()
    rate = url.rate or meta.rate
    if rate is None:
        return None
    channels = url.channels or meta.channels or 1
    source = "url" if url.rate else "metadata"
    return _binary(rate, channels, source)


def binary_default(url: FormatHint, metadata: FormatHint | None) -> StreamFormat:
    meta = metadata or FormatHint()
    return _binary(DEFAULT_BINARY_RATE, url.channels or meta.channels or 1, "default")


def _binary(rate: int, channels: int, source: str) -> StreamFormat:
    tracks: tuple[Track, ...] = ("inbound", "outbound") if channels == 2 else ("inbound",)
    return StreamFormat(Dialect.BINARY, "l16", rate, tracks, channels, source)
