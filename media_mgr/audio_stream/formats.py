"""What a stream carries (encoding, rate, tracks, channels) and how it was learnt; pure.

Each dialect learns it its own way (``dialects/``): voipbit says it in ``start`` or shows it in its
payload sizes; the binary dialect needs the URL query or a metadata frame. Past that point the
session, the capture and the playout see only a ``StreamFormat``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from media_mgr.audio_stream.events import FRAME_MS, Encoding, Track

RATE_KEYS = ("rate", "sampleRate", "sample_rate", "samplerate", "sampling")
CHANNEL_KEYS = ("channels", "mode", "mix", "mix_type", "mixType")
CALL_KEYS = ("callId", "call_id", "uuid", "callSid")
_MODES = {"mono": 1, "mixed": 1, "stereo": 2, "1": 1, "2": 2}


def parse_rate(value: object) -> int | None:
    """``8000``, ``"16000"``, ``"16k"`` -> Hz when it is a rate the modules allow, else None."""
    if isinstance(value, bool):
        return None
    text = str(value).strip().lower()
    if text.endswith("k") and text[:-1].isdigit():
        rate = int(text[:-1]) * 1000
    elif text.isdigit():
        rate = int(text)
    else:
        return None
    return rate if rate % 8000 == 0 and 8000 <= rate <= 48000 else None


def parse_channels(value: object) -> int | None:
    return _MODES.get(str(value).strip().lower())


def hint_from(fields: Mapping[str, Any]) -> FormatHint:
    """What a query string or a metadata object says about the format, key spellings of both modules."""
    rate = next((r for k in RATE_KEYS if k in fields and (r := parse_rate(fields[k])) is not None), None)
    channels = next(
        (c for k in CHANNEL_KEYS if k in fields and (c := parse_channels(fields[k])) is not None), None
    )
    call = next((str(fields[k]) for k in CALL_KEYS if isinstance(fields.get(k), str) and fields[k]), None)
    return FormatHint(rate, channels, call)


@dataclass(frozen=True)
class FormatHint:
    """What a URL query or a metadata frame says about the format, if anything."""

    rate: int | None = None
    channels: int | None = None
    call_id: str | None = None


@dataclass(frozen=True)
class StreamFormat:
    """``tracks``: the call's directions in the stream, recording order (inbound left);
    ``track_channels``: channels per track as the assembler takes them (voipbit: one mono stream per
    track; binary: one track, mono or stereo interleaved)."""

    dialect: str
    encoding: Encoding
    rate: int
    tracks: tuple[Track, ...]
    track_channels: tuple[int, ...]
    learnt_from: str

    @property
    def channels(self) -> int:
        """Channels of the recording."""
        return sum(self.track_channels)

    @property
    def two_way(self) -> bool:
        """Both directions of the call are in the stream: what the buffer presets call bidirectional."""
        return self.channels == 2

    @property
    def frame_samples(self) -> int:
        """Samples per channel in one 20 ms frame."""
        return self.rate * FRAME_MS // 1000

    def public(self) -> dict[str, object]:
        return {
            "dialect": self.dialect,
            "encoding": self.encoding,
            "rate": self.rate,
            "tracks": list(self.tracks),
            "channels": self.channels,
            "from": self.learnt_from,
        }
