"""What a stream carries (encoding, rate, tracks, channels) and how it was learnt; pure.

Each dialect learns it its own way (``dialects/``): voipbit says it in ``start`` or shows it in its
payload sizes; the binary dialect needs the URL query or a metadata frame. Past that point the
session, the capture and the playout see only a ``StreamFormat``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
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
    if isinstance(value, int):
        rate: int | None = value
    elif isinstance(value, str):
        text = value.strip().lower()
        thousands = text.endswith("k")
        rate = _digits(text[:-1] if thousands else text)
        rate = rate * 1000 if thousands and rate is not None else rate
    else:
        return None
    return rate if rate is not None and rate % 8000 == 0 and 8000 <= rate <= 48000 else None


def _digits(text: str) -> int | None:
    """A short string of ASCII digits as a number: ``str.isdigit`` alone also accepts ``"²"`` (which
    ``int`` refuses) and a string of any length (``int`` refuses more than 4,300 digits)."""
    return int(text) if 0 < len(text) <= 6 and text.isascii() and text.isdigit() else None


def parse_channels(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return _MODES.get(str(value).strip().lower())


def hint_from(fields: Mapping[str, Any]) -> FormatHint:
    """What a query string or a metadata object says about the format, key spellings of both modules."""
    rate = next((r for k in RATE_KEYS if k in fields and (r := parse_rate(fields[k])) is not None), None)
    channels = next(
        (c for k in CHANNEL_KEYS if k in fields and (c := parse_channels(fields[k])) is not None), None
    )
    call = next((v for k in CALL_KEYS if isinstance(v := fields.get(k), str) and _is_call_id(v)), None)
    return FormatHint(rate, channels, call)


def _is_call_id(value: str) -> bool:
    """A call id we can name a recording after: printable (no lone surrogate, no NUL), not too long."""
    return 0 < len(value) <= 256 and value.isprintable()


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

    @cached_property  # read per frame on the hot path
    def channels(self) -> int:
        """Channels of the recording."""
        return sum(self.track_channels)

    @property
    def two_way(self) -> bool:
        """Both directions of the call are in the stream: what the buffer presets call bidirectional."""
        return self.channels == 2

    @cached_property
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
