"""The binary dialect (amigniter's mod_audio_stream, drachtio's mod_audio_fork): frames <-> events; pure.

Audio is raw s16le in binary frames, mono (or mixed) or stereo interleaved with the caller left
(reference B4). Nothing in a frame says the rate or the channel count: they come from the URL query
(``?rate=16000&channels=2``, ``?sampleRate=16k&mode=stereo``) or from the metadata text frame, which
may come after the first audio frames (B3) or never. Any other text is an application message.
Frames need not be 20 ms and may be a few samples off (resampler): duration comes from the bytes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from media_mgr.audio_stream.events import Audio, EndOfStream, Event, Metadata, Text

SUBPROTOCOL_FORK = "audio.drachtio.org"
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


@dataclass(frozen=True)
class FormatHint:
    rate: int | None = None
    channels: int | None = None
    call_id: str | None = None


def hint_from(fields: Mapping[str, Any]) -> FormatHint:
    """What a query string or a metadata object says about the format, key spellings of both modules."""
    rate = next((r for k in RATE_KEYS if k in fields and (r := parse_rate(fields[k])) is not None), None)
    channels = next(
        (c for k in CHANNEL_KEYS if k in fields and (c := parse_channels(fields[k])) is not None), None
    )
    call = next((str(fields[k]) for k in CALL_KEYS if isinstance(fields.get(k), str) and fields[k]), None)
    return FormatHint(rate, channels, call)


def parse_metadata(text: str) -> Metadata:
    try:
        obj = json.loads(text)
    except ValueError:
        return Metadata(text)
    if not isinstance(obj, dict):
        return Metadata(text)
    hint = hint_from(obj)
    return Metadata(text, hint.rate, hint.channels, hint.call_id)


def parse_text(text: str, *, metadata_seen: bool) -> Event:
    """The first text frame is metadata; later ones are application text (amigniter's ``stop <text>``)."""
    if not metadata_seen:
        return parse_metadata(text)
    return Text(text, "text after the metadata")


def parse_frame(data: bytes) -> Event:
    """A binary frame: audio, or (zero bytes) mod_audio_fork's end of stream."""
    return Audio(data) if data else EndOfStream()


class Framer:
    """Keeps audio aligned to whole sample frames when a peer sends a byte count that is not one:
    the bytes of a split sample frame wait for the next message instead of being dropped, so no
    sample after them shifts."""

    def __init__(self, block_align: int) -> None:
        self.block_align = block_align
        self._carry = b""
        self.misaligned = 0  # messages that ended inside a sample frame

    def feed(self, data: bytes) -> bytes:
        """Whole sample frames of what came so far; the rest is kept for the next message."""
        if self._carry:
            data = self._carry + data
        cut = len(data) - len(data) % self.block_align
        if cut != len(data):
            self.misaligned += 1
        self._carry = data[cut:]
        return data[:cut]


# -- server -> module: JSON the modules turn into a file for the FreeSWITCH app to play (B5, C) --------


def stream_audio(pcm: bytes, rate: int, checkpoint: str | None = None) -> str:
    """amigniter's ``streamAudio``; extra ``data`` keys come back in its ``::play`` event."""
    data: dict[str, Any] = {"audioDataType": "raw", "sampleRate": rate, "audioData": _b64(pcm)}
    if checkpoint is not None:
        data["checkpoint"] = checkpoint
    return json.dumps({"type": "streamAudio", "data": data}, separators=(",", ":"))


def play_audio(pcm: bytes, rate: int, checkpoint: str | None = None) -> str:
    """mod_audio_fork's ``playAudio``."""
    data: dict[str, Any] = {"audioContentType": "raw", "sampleRate": rate, "audioContent": _b64(pcm)}
    if checkpoint is not None:
        data["textContent"] = checkpoint
    return json.dumps({"type": "playAudio", "data": data}, separators=(",", ":"))


def kill_audio() -> str:
    return '{"type":"killAudio"}'


def _b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode("ascii")
