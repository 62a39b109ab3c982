"""How much audio to keep queued at the module: the seed's three presets, in milliseconds; pure.

The seed README's presets are ``low_latency 160,320,5``, ``balanced 320,640,10`` and
``high_quality 640,1280,20`` ("min,max,target_ms", with 160 "frames" as the low watermark). Read as
samples at 8 kHz, where one 20 ms frame is 160 samples, they are leads of 20-40, 40-80 and 80-160 ms;
the third figure is the headroom kept above the jitter allowance. Within a preset the lead is
``jitter_factor * J + headroom`` (J: the RFC 3550 estimate of the session's inbound jitter, its
recent peak), plus the size of recent underruns the module's acknowledgements revealed (rare long
delays that J averages away), clamped to the preset's range: barge-in is heard within the lead, and
jitter below it causes no underrun.

The base preset follows the seed module's own selection (``adaptive_buffer_create_stream``, reference
A5): two-way at 16 kHz or more -> high quality, two-way below or one-way at 16 kHz or more ->
balanced, otherwise low latency. "Two-way" is what the wire shows: both tracks, or stereo. A network
whose jitter needs more than the preset's maximum moves the session up a preset ("high-jitter
networks -> high quality"), and back down when it calms.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from media_mgr.config import Settings


class Preset(enum.Enum):
    LOW_LATENCY = "low_latency"
    BALANCED = "balanced"
    HIGH_QUALITY = "high_quality"


ORDER = (Preset.LOW_LATENCY, Preset.BALANCED, Preset.HIGH_QUALITY)


@dataclass(frozen=True)
class LeadRange:
    min_ms: float
    max_ms: float
    headroom_ms: float

    def __post_init__(self) -> None:
        if not 0 < self.min_ms <= self.max_ms or self.headroom_ms < 0:
            raise ValueError(f"bad lead range {self}")


DEFAULT_PRESETS = {
    Preset.LOW_LATENCY: LeadRange(20, 40, 5),
    Preset.BALANCED: LeadRange(40, 80, 10),
    Preset.HIGH_QUALITY: LeadRange(80, 160, 20),
}


@dataclass(frozen=True)
class Lead:
    """The lead chosen now, and why."""

    ms: float
    preset: Preset | None  # None: a fixed lead was configured
    base: Preset | None


@dataclass(frozen=True)
class BufferPolicy:
    presets: dict[Preset, LeadRange] = field(default_factory=lambda: dict(DEFAULT_PRESETS))
    adaptive: bool = True
    fixed_lead_ms: float = 100.0
    jitter_factor: float = 4.0
    forced: Preset | None = None  # a base preset chosen by configuration instead of the rules

    @classmethod
    def from_settings(cls, settings: Settings) -> BufferPolicy:
        """The presets as configured (parsed once, by ``Settings``), the mode and the forced preset."""
        return cls(
            presets={
                Preset.LOW_LATENCY: LeadRange(*settings.playout_low_latency),
                Preset.BALANCED: LeadRange(*settings.playout_balanced),
                Preset.HIGH_QUALITY: LeadRange(*settings.playout_high_quality),
            },
            adaptive=settings.playout_adaptive,
            fixed_lead_ms=settings.playout_fixed_lead_ms,
            jitter_factor=settings.playout_jitter_factor,
            forced=None if settings.playout_preset == "auto" else Preset(settings.playout_preset),
        )

    def base(self, rate: int, two_way: bool) -> Preset:
        if self.forced is not None:
            return self.forced
        if two_way:
            return Preset.HIGH_QUALITY if rate >= 16000 else Preset.BALANCED
        return Preset.BALANCED if rate >= 16000 else Preset.LOW_LATENCY

    def lead(self, rate: int, two_way: bool, jitter_ms: float, slip_ms: float = 0.0) -> Lead:
        """``jitter_ms``: the session's jitter estimate; ``slip_ms``: recent underruns at the module."""
        if not self.adaptive:
            return Lead(self.fixed_lead_ms, None, None)
        base = self.base(rate, two_way)
        candidates = ORDER[ORDER.index(base) :]
        for preset in candidates:
            r = self.presets[preset]
            needed = self.jitter_factor * jitter_ms + r.headroom_ms + slip_ms
            if needed <= r.max_ms or preset is candidates[-1]:
                return Lead(float(math.ceil(min(max(needed, r.min_ms), r.max_ms))), preset, base)
        raise AssertionError("unreachable")  # pragma: no cover
