"""How late our own event loop runs: when arrival times stop saying anything about the network.

A loop that is behind reads every frame late, and on the media clock that looks exactly like a gap
in the call. A timer's lateness understates how late a frame is read: the timer waits at most for
the loop's current pass, while a frame that came just after the loop polled waits for that pass,
then for its turn in the next. So arrival times are trusted only while the timer's worst lateness
over the last gap window (how long a gap takes to be decided) stayed under half the gap threshold.

Before, one sample every 0.1 s was kept as a peak that fell by a fifth each sample: a worker
sharing its cores with another worker and the load generator read its frames 60 to 70 ms late for
half a second while its timers looked on time at the moment a gap was decided, and 202 of 1000
sessions got a false 60 ms gap (``bench/audio_stream_load.py --workers 2``).
"""

from __future__ import annotations

import asyncio
from collections import deque

LAG_EVERY = 0.1  # how often the event loop's lag is sampled (every 20 ms showed in the SHOUT bench's CPU)


class LoopLag:
    """``sample`` the loop's lateness as it is measured; ``peak`` is the worst of the last ``window``
    seconds (a sliding maximum: each sample is kept only while no later one is as late)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.peak = 0.0
        self._kept: deque[tuple[float, float]] = deque()  # (at, lag), lags decreasing

    def sample(self, at: float, lag: float) -> None:
        kept = self._kept
        while kept and kept[-1][1] <= lag:
            kept.pop()
        kept.append((at, lag))
        while kept[0][0] <= at - self.window:
            kept.popleft()
        self.peak = kept[0][1]

    async def watch(self) -> None:
        """Sample how late the running loop wakes a timer, every ``LAG_EVERY``, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(LAG_EVERY)
            now = loop.time()
            self.sample(now, now - start - LAG_EVERY)

    def reliable(self, gap_threshold: float) -> bool:
        """Whether arrival times mean something: our loop was not half a gap threshold late lately."""
        return self.peak < gap_threshold / 2
