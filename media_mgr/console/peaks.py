"""Peaks of 16-bit PCM, fed chunk by chunk: what a waveform picture needs, in constant memory.

The audio is cut into ``columns`` equal spans of frames (the count is known in advance from the
header or the item's duration); each column keeps the lowest and highest sample of every channel
in its span, and how many samples hit full scale. Audio longer than announced lands in the last
column, shorter leaves the tail columns empty, so a wrong estimate bends the picture, never memory.
Pure: bytes in, numbers out.
"""

from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass

FULL_SCALE = 32767
CLIP_LEVEL = 32767 - 1  # a sample at or beyond this (or at -32768) counts as clipped


@dataclass(frozen=True)
class Peaks:
    """Per column: (lowest, highest) sample, or None where no audio fell."""

    columns: tuple[tuple[int, int] | None, ...]
    frames: int
    clipped: int  # samples at full scale

    @property
    def peak(self) -> int:
        """The largest absolute sample value in the whole item."""
        values = [max(-lo, hi) for col in self.columns if col is not None for lo, hi in [col]]
        return min(max(values, default=0), FULL_SCALE)

    @property
    def peak_dbfs(self) -> float | None:
        """Peak level in dBFS (0 is full scale); None for digital silence."""
        return None if self.peak == 0 else round(20 * math.log10(self.peak / FULL_SCALE), 1)


class PeakMeter:
    """Accumulates peaks of interleaved s16le audio with ``channels`` channels."""

    def __init__(self, columns: int, expected_frames: int, channels: int) -> None:
        if columns <= 0 or channels <= 0:
            raise ValueError("columns and channels must be positive")
        self.columns = columns
        self.channels = channels
        self.span = max(1, math.ceil(max(expected_frames, 1) / columns))  # frames per column
        self._lo = [0] * columns
        self._hi = [0] * columns
        self._seen = [False] * columns
        self._frames = 0
        self._clipped = 0
        self._carry = b""

    def feed(self, data: bytes) -> None:
        """Take the next bytes of audio; a partial frame at the end waits for the next call."""
        frame_bytes = 2 * self.channels
        data = self._carry + data
        usable = len(data) - len(data) % frame_bytes
        self._carry = data[usable:]
        if not usable:
            return
        samples = array("h")
        samples.frombytes(data[:usable])
        if sys.byteorder == "big":
            samples.byteswap()
        total = len(samples)
        pos = 0
        while pos < total:
            column = min(self._frames // self.span, self.columns - 1)
            room = (column + 1) * self.span - self._frames if column < self.columns - 1 else total
            take = min(room * self.channels, total - pos)
            part = samples[pos : pos + take]
            lo, hi = min(part), max(part)
            if self._seen[column]:
                self._lo[column] = min(self._lo[column], lo)
                self._hi[column] = max(self._hi[column], hi)
            else:
                self._lo[column], self._hi[column], self._seen[column] = lo, hi, True
            if lo <= -CLIP_LEVEL - 1 or hi >= CLIP_LEVEL:
                self._clipped += sum(1 for s in part if s >= CLIP_LEVEL or s <= -CLIP_LEVEL - 1)
            pos += take
            self._frames += take // self.channels

    def result(self) -> Peaks:
        cols = tuple((self._lo[i], self._hi[i]) if self._seen[i] else None for i in range(self.columns))
        return Peaks(cols, self._frames, self._clipped)
