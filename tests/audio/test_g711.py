"""G.711 expansion matches the ITU reference for every one of the 256 codes."""

from __future__ import annotations

import numpy as np

from media_mgr.audio.g711 import alaw_to_l16, ulaw_to_l16

CODES = bytes(range(256))


def ulaw_reference(code: int) -> int:
    """G.711 mu-law expansion, written from the standard (bias 0x84, inverted bits)."""
    u = ~code & 0xFF
    magnitude = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)
    return 0x84 - magnitude if u & 0x80 else magnitude - 0x84


def alaw_reference(code: int) -> int:
    """G.711 A-law expansion, written from the standard (even bits inverted)."""
    a = code ^ 0x55
    exponent, mantissa = (a >> 4) & 0x07, a & 0x0F
    magnitude = (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    return magnitude if a & 0x80 else -magnitude


def test_mu_law_expands_as_the_standard_says() -> None:
    got = np.frombuffer(ulaw_to_l16(CODES), dtype="<i2").tolist()
    assert got == [ulaw_reference(c) for c in CODES]


def test_a_law_expands_as_the_standard_says() -> None:
    got = np.frombuffer(alaw_to_l16(CODES), dtype="<i2").tolist()
    assert got == [alaw_reference(c) for c in CODES]
