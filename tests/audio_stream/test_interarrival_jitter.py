"""The RFC 3550 interarrival jitter estimator, and the held peak that sizes the lead."""

from __future__ import annotations

import pytest

from media_mgr.audio_stream.capture.jitter import InterarrivalJitter


def test_a_constant_transit_has_no_jitter() -> None:
    j = InterarrivalJitter()
    for k in range(100):
        j.update(5.0 + 0.02 * k, 0.02 * k)
    assert j.value_ms == 0.0


def test_alternating_delay_converges_to_the_mean_transit_change() -> None:
    j = InterarrivalJitter()
    for k in range(2000):
        j.update(0.02 * k + (0.010 if k % 2 else 0.0), 0.02 * k)
    assert j.value_ms == pytest.approx(10.0, rel=0.01)  # |D| is always 10 ms


def test_the_held_peak_outlasts_j_and_decays() -> None:
    j = InterarrivalJitter()
    for k in range(50):
        j.update(0.02 * k + (0.05 if k % 2 else 0.0), 0.02 * k)
    peak = j.held_ms
    for k in range(50, 550):  # 10 s of calm
        j.update(0.02 * k, 0.02 * k)
    assert j.value_ms < 0.1
    assert peak * 0.3 < j.held_ms < peak * 0.45  # about e**-1 after HOLD_SECONDS
    j.rebase()
    j.update(100.0, 0.0)  # a known discontinuity is not counted
    assert j.value_ms < 0.1
