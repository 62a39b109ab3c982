"""G.711 (mu-law, A-law) to 16-bit linear PCM; pure.

mod_audio_stream sends mu-law when the channel's codec is PCMU and the stream asks for it (voipbit
``audio/x-mulaw``); stored WAVs may be G.711 too. ``audioop`` does the sample loops in C (the
``audioop-lts`` package provides it from Python 3.13); its expansion is the ITU table.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def ulaw_to_l16(data: bytes) -> bytes:
    """mu-law bytes -> s16le, one sample per byte."""
    return audioop.ulaw2lin(data, 2)


def alaw_to_l16(data: bytes) -> bytes:
    """A-law bytes -> s16le, one sample per byte."""
    return audioop.alaw2lin(data, 2)
