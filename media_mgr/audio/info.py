"""What a piece of audio is, as probing finds it; shared by every layer above."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AudioFormat = Literal["wav", "mp3"]

CONTENT_TYPES: dict[AudioFormat, str] = {"wav": "audio/wav", "mp3": "audio/mpeg"}


@dataclass(frozen=True)
class AudioInfo:
    """What probing found in a file: enough to serve it and to describe it."""

    format: AudioFormat
    codec: str
    sample_rate: int
    channels: int
    duration_ms: int

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]
