"""Tracks side by side into the recording's PCM: interleaving, silence, late audio, bounds."""

from __future__ import annotations

import numpy as np

from media_mgr.audio_stream.capture.assembler import Assembler, interleave


def test_two_mono_tracks_interleave_inbound_left() -> None:
    left = np.arange(1, 5, dtype="<i2").tobytes()
    right = (-np.arange(1, 5, dtype="<i2")).tobytes()
    out = np.frombuffer(interleave(left, right), dtype="<i2")
    assert out.tolist() == [1, -1, 2, -2, 3, -3, 4, -4]


def test_gaps_are_zeros_and_take_waits_for_the_slowest_track() -> None:
    a = Assembler([1, 1], max_ahead=1000)
    a.put(0, 0, np.full(10, 7, dtype="<i2").tobytes())
    a.put(0, 20, np.full(10, 8, dtype="<i2").tobytes())  # 10 frames of nothing between
    a.put(1, 0, np.full(5, 9, dtype="<i2").tobytes())
    assert a.complete == 5 and a.furthest == 30 and a.lag == 25
    out = np.frombuffer(a.take(30), dtype="<i2").reshape(-1, 2)
    assert out[:, 0].tolist() == [7] * 10 + [0] * 10 + [8] * 10
    assert out[:, 1].tolist() == [9] * 5 + [0] * 25


def test_audio_for_what_was_already_recorded_is_dropped_and_counted() -> None:
    a = Assembler([1], max_ahead=100)
    a.put(0, 0, bytes(20))
    a.take(10)
    assert a.put(0, 5, np.full(10, 3, dtype="<i2").tobytes()) == 5
    assert np.frombuffer(a.take(15), dtype="<i2").tolist() == [3] * 5
    assert a.dropped_frames == 5


def test_the_window_is_bounded() -> None:
    a = Assembler([2], max_ahead=100)
    assert a.put(0, 90, bytes(4 * 50)) == 40  # a stereo track: 4 bytes a frame
    assert a.put(0, 10_000_000, bytes(4 * 10)) == 10
    assert len(a.take(10**9)) == 4 * 100
