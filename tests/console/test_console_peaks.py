"""Peaks of streamed audio: each column's lowest and highest sample, whatever the chunking."""

from __future__ import annotations

import numpy as np
import pytest

from media_mgr.console.peaks import PeakMeter


def expected_columns(
    samples: np.ndarray, columns: int, span: int, channels: int
) -> list[tuple[int, int] | None]:
    frames = samples.reshape(-1, channels)
    out: list[tuple[int, int] | None] = []
    for c in range(columns):
        part = frames[c * span : (c + 1) * span] if c < columns - 1 else frames[c * span :]
        out.append((int(part.min()), int(part.max())) if part.size else None)
    return out


@pytest.mark.parametrize("piece", [1, 3, 7, 1000, 1 << 20])
@pytest.mark.parametrize("channels", [1, 2])
def test_columns_hold_exact_extremes_whatever_the_chunk_size(piece: int, channels: int) -> None:
    rng = np.random.default_rng(7)
    samples = rng.integers(-32768, 32767, size=10_007 * channels, dtype=np.int16)
    data = samples.astype("<i2").tobytes()
    meter = PeakMeter(50, 10_007, channels)
    for i in range(0, len(data), piece):
        meter.feed(data[i : i + piece])
    peaks = meter.result()
    assert peaks.frames == 10_007
    assert list(peaks.columns) == expected_columns(samples, 50, meter.span, channels)


def test_audio_longer_than_announced_lands_in_the_last_column() -> None:
    samples = np.concatenate([np.zeros(100, np.int16), np.full(100, 1000, np.int16)])
    meter = PeakMeter(4, 100, 1)  # announced 100 frames, 200 arrive
    meter.feed(samples.astype("<i2").tobytes())
    peaks = meter.result()
    assert peaks.columns == ((0, 0), (0, 0), (0, 0), (0, 1000))


def test_shorter_audio_leaves_tail_columns_empty_and_silence_has_no_level() -> None:
    meter = PeakMeter(4, 400, 1)
    meter.feed(bytes(2 * 150))
    peaks = meter.result()
    assert peaks.columns == ((0, 0), (0, 0), None, None)
    assert peaks.peak == 0
    assert peaks.peak_dbfs is None


def test_full_scale_samples_are_counted_as_clipped() -> None:
    samples = np.array([0, 32767, -32768, 12000, 32766, -32767, -100], dtype=np.int16)
    meter = PeakMeter(2, len(samples), 1)
    meter.feed(samples.astype("<i2").tobytes())
    peaks = meter.result()
    assert peaks.clipped == 4
    assert peaks.peak == 32767
    assert peaks.peak_dbfs == 0.0


def test_half_scale_reads_minus_six_dbfs() -> None:
    meter = PeakMeter(1, 3, 1)
    meter.feed(np.array([0, 16384, -16000], dtype="<i2").tobytes())
    assert meter.result().peak_dbfs == -6.0
