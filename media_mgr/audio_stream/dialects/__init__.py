"""The wire dialects of mod_audio_stream's modules, one class each behind ``base.Dialect``.

``voipbit``: voipbit/mod_audio_stream's JSON (``start``, ``media`` with base64 audio, ``stop``;
``media.play`` back). ``binary``: amigniter's mod_audio_stream and drachtio's mod_audio_fork (raw
s16le frames, a metadata text frame; ``streamAudio`` / ``playAudio`` back). ``pick`` tells them apart
by a stream's first frame. A new dialect is one more module implementing ``Dialect``.
"""

from __future__ import annotations

from media_mgr.audio_stream.dialects.base import Dialect
from media_mgr.audio_stream.dialects.binary import BinaryDialect
from media_mgr.audio_stream.dialects.voipbit import VoipbitDialect, looks_like_voipbit
from media_mgr.audio_stream.formats import FormatHint

DIALECTS: tuple[type[Dialect], ...] = (VoipbitDialect, BinaryDialect)
SUBPROTOCOLS = tuple(p for d in DIALECTS for p in d.subprotocols)


def pick(
    text: str | None, hint: FormatHint, encoding_hint: str | None, *, metadata_timeout: float
) -> Dialect:
    """The dialect a stream speaks, from its first frame: voipbit's first is a JSON event."""
    cls = VoipbitDialect if text is not None and looks_like_voipbit(text) else BinaryDialect
    return cls(hint, encoding_hint, metadata_timeout=metadata_timeout)
