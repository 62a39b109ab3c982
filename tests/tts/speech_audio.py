"""What tells speech from silence, a tone or noise in a test: duration, energy, and how both vary.

Speech alternates syllables and gaps (the 20 ms frame level swings by several dB: 6 to 7 dB for
eSpeak NG, against 0.05 dB for a steady tone and 0.3 dB for white noise) and voiced and unvoiced
sounds (the zero-crossing rate of a frame changes, where a tone's or noise's stays put).
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Measured:
    seconds: float
    rms: float
    level_spread_db: float  # standard deviation of the 20 ms frame levels
    zcr_spread: float  # standard deviation of the frames' zero-crossing rates


def measure(samples: np.ndarray, rate: int) -> Measured:
    x = samples.astype(np.float64) / 32768.0
    frame = rate // 50
    frames = x[: len(x) // frame * frame].reshape(-1, frame)
    level_db = 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-9)
    zcr = (np.diff(np.sign(frames), axis=1) != 0).mean(axis=1)
    return Measured(len(x) / rate, float(np.sqrt((x**2).mean())), float(level_db.std()), float(zcr.std()))


def wav_samples(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate()


def assert_speech(m: Measured, min_seconds: float, max_seconds: float) -> None:
    """Plausible speech: as long as the words take, loud enough, varying as speech varies."""
    assert min_seconds <= m.seconds <= max_seconds, m
    assert m.rms > 0.02, m
    assert m.level_spread_db > 3.0, m
    assert m.zcr_spread > 0.03, m
