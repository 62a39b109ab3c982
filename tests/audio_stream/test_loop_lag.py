"""Our own event loop's lateness, kept as the worst of the last gap window: arrival times are not
trusted while it was half a gap threshold late (a frame can be read up to two passes late)."""

from __future__ import annotations

import asyncio
import time

from media_mgr.audio_stream.loop_lag import LAG_EVERY, LoopLag

THRESHOLD = 0.06


def test_the_worst_lateness_of_the_window_is_kept_for_the_whole_window() -> None:
    lag = LoopLag(window=0.4)
    lag.sample(10.0, 0.001)
    assert lag.reliable(THRESHOLD)
    lag.sample(10.02, 0.035)  # above half the threshold, below the threshold itself
    assert not lag.reliable(THRESHOLD)
    for k in range(1, 19):  # on time again, but the late pass is still inside the window
        lag.sample(10.02 + 0.02 * k, 0.001)
        assert lag.peak == 0.035 and not lag.reliable(THRESHOLD)
    lag.sample(10.43, 0.002)  # the late sample has left the window: the worst since then counts
    assert lag.peak == 0.002 and lag.reliable(THRESHOLD)


def test_a_later_and_larger_lateness_replaces_the_peak_and_a_smaller_one_waits_its_turn() -> None:
    lag = LoopLag(window=0.4)
    lag.sample(1.0, 0.05)
    lag.sample(1.1, 0.2)
    lag.sample(1.2, 0.03)
    assert lag.peak == 0.2
    lag.sample(1.55, 0.0)  # 0.2 (at 1.1) has left the window; 0.03 (at 1.2) is now the worst
    assert lag.peak == 0.03
    lag.sample(1.65, 0.0)
    assert lag.peak == 0.0


def test_a_blocked_loop_is_seen_by_the_next_sample() -> None:
    """A real event loop blocked for three sampling periods: the sample that was due meanwhile is
    at least two periods late, whatever the phase of the watcher."""

    async def run() -> float:
        lag = LoopLag(window=0.4)
        task = asyncio.get_running_loop().create_task(lag.watch())
        await asyncio.sleep(3 * LAG_EVERY)
        time.sleep(3 * LAG_EVERY)  # the loop is blocked: a pass that long
        await asyncio.sleep(2 * LAG_EVERY)
        task.cancel()
        return lag.peak

    assert asyncio.run(run()) >= 1.9 * LAG_EVERY
