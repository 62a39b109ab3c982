"""Interarrival jitter of one stream, RFC 3550 section 6.4.1 (appendix A.8); pure.

The module stamps each chunk with a media clock (``chunk``/``timestamp``, or for the binary
dialect the byte count), so the transit of chunk i is ``arrival_i - media_i`` up to a constant, and
``J += (|D(i-1, i)| - J) / 16`` with ``D`` the change in transit. This is the estimate the playout
lead is sized from, and the number ``GET /v1/streams`` and ``/metrics`` report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

GAIN = 1.0 / 16.0  # RFC 3550's noise-reduction factor
HOLD_SECONDS = (
    10.0  # how long a jitter peak keeps sizing the playout lead (it decays with this time constant)
)


@dataclass(slots=True)
class InterarrivalJitter:
    """``update`` with (arrival seconds, media seconds) per chunk; ``value_ms`` is J in milliseconds.

    J reacts within a few packets and forgets as fast (gain 1/16: about 0.3 s at 50 packets/s), so
    the lead is sized from ``held``: J's recent peak, decaying over ``HOLD_SECONDS``. A link that
    spikes every few seconds keeps a lead that covers the spikes instead of one that has just shrunk.
    """

    jitter: float = 0.0  # seconds
    samples: int = 0
    peak: float = 0.0  # highest J seen, seconds
    held: float = 0.0  # J's recent peak, seconds
    _last_transit: float | None = field(default=None, repr=False)
    _last_arrival: float = field(default=0.0, repr=False)

    def update(self, arrival: float, media: float) -> float:
        transit = arrival - media
        if self._last_transit is not None:
            delta = abs(transit - self._last_transit)
            self.jitter += (delta - self.jitter) * GAIN
            if self.jitter > self.peak:
                self.peak = self.jitter
            if self.held <= self.jitter:  # decay or not, J is the peak: no exp() per frame
                self.held = self.jitter
            else:
                decay = math.exp(-max(0.0, arrival - self._last_arrival) / HOLD_SECONDS)
                self.held = max(self.jitter, self.held * decay)
        self._last_transit = transit
        self._last_arrival = arrival
        self.samples += 1
        return self.jitter

    def rebase(self) -> None:
        """Forget the last transit: the next chunk follows a known discontinuity (gap, reconnect)."""
        self._last_transit = None

    @property
    def value_ms(self) -> float:
        return self.jitter * 1000.0

    @property
    def held_ms(self) -> float:
        return self.held * 1000.0
