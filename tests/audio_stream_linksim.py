"""A jittery link between media-mgr and a voipbit module, simulated in virtual time (1 ms steps).

Both directions are TCP: each message is delayed by a draw from the link's distribution (seeded)
and can never overtake the one before it (head-of-line blocking). The module captures a 20 ms chunk
per tick (the server measures RFC 3550 jitter on them with the real ``InterarrivalJitter``) and
plays one frame per tick from an unbounded buffer, as reference Part G2 says; the server paces an
item into it with the real ``Pacer`` and the lead the real ``BufferPolicy`` picks (or a fixed lead),
with sync checkpoints acknowledged back over the link.

Measured: underruns (ticks where audio is owed but no whole frame is there) and barge-in latency,
the time until the call is silent if the server stops sending now: what is queued at the module and
in flight. (With ``media.clear`` the module also drops its queue: that costs one trip, whatever
the lead; ``clear_ms`` reports it.)
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from media_mgr.audio_stream.capture.jitter import InterarrivalJitter
from media_mgr.audio_stream.playout.buffering import BufferPolicy, Preset
from media_mgr.audio_stream.playout.pacer import MarkKind, Pacer

FRAME = 0.020


@dataclass(frozen=True)
class Link:
    """One-way delay = base + gamma(shape, mean/shape) jitter, plus rare spikes."""

    name: str
    base_ms: float = 20.0
    jitter_mean_ms: float = 1.0
    shape: float = 1.5
    spike_prob: float = 0.0
    spike_ms: float = 0.0

    def delays(self, rng: np.random.Generator, n: int) -> np.ndarray:
        jitter = (
            rng.gamma(self.shape, self.jitter_mean_ms / self.shape, n) if self.jitter_mean_ms else np.zeros(n)
        )
        spikes = (rng.random(n) < self.spike_prob) * rng.uniform(0.5, 1.0, n) * self.spike_ms
        return (self.base_ms + jitter + spikes) / 1000.0


CALM = Link("calm", jitter_mean_ms=1.0)
JITTERY = Link("jittery", jitter_mean_ms=12.0, spike_prob=0.01, spike_ms=120.0)


@dataclass(frozen=True)
class Result:
    mode: str
    preset: str
    underruns: int
    ticks: int
    barge_mean_ms: float
    barge_p95_ms: float
    clear_ms: float
    lead_mean_ms: float
    jitter_ms: float
    presets_seen: tuple[str, ...]


class _Pipe:
    """A TCP direction: in-order delivery after a random delay."""

    def __init__(self, delays: np.ndarray) -> None:
        self.delays = delays
        self.i = 0
        self.last = 0.0
        self.queue: list[tuple[float, int, object]] = []

    def send(self, now: float, item: object) -> float:
        at = max(self.last, now + float(self.delays[self.i % len(self.delays)]))
        self.i += 1
        self.last = at
        heapq.heappush(self.queue, (at, self.i, item))
        return at

    def due(self, now: float) -> list[object]:
        out = []
        while self.queue and self.queue[0][0] <= now:
            out.append(heapq.heappop(self.queue)[2])
        return out


def simulate(
    link: Link,
    *,
    rate: int = 8000,
    two_way: bool = False,
    policy: BufferPolicy | None = None,
    fixed_lead_ms: float | None = None,
    seconds: float = 60.0,
    seed: int = 1,
    sync_every: float | None = 1.0,
) -> Result:
    """Play ``seconds`` of audio into the module over ``link``; inbound audio flows all along."""
    rng = np.random.default_rng(seed)
    n = int(seconds / FRAME) * 4 + 1000
    inbound, outbound, acks = (
        _Pipe(link.delays(rng, n)),
        _Pipe(link.delays(rng, n)),
        _Pipe(link.delays(rng, n)),
    )
    policy = policy or BufferPolicy()
    if fixed_lead_ms is not None:
        policy = BufferPolicy(adaptive=False, fixed_lead_ms=fixed_lead_ms)
    pacer = Pacer(FRAME, sync_every=sync_every, hold_grace=1.0)
    jitter = InterarrivalJitter()
    warmup = 2.0  # the server listens to the call for a while before it plays anything
    total = int(seconds / FRAME)
    sent = played = underruns = ticks = 0
    buffered: list[object] = []  # frames (ints) and mark names at the module, in order
    in_flight_frames = 0
    barge: list[float] = []
    leads: list[float] = []
    presets: set[str] = set()
    phase = float(rng.uniform(0, FRAME))
    step = 0.001
    t = 0.0
    k = 0
    end = warmup + seconds + 5.0
    while t < end and played < total:
        if t >= phase + k * FRAME:  # a module tick: capture, then playout
            inbound.send(t, k)
            if t >= warmup:
                frames_there = sum(1 for x in buffered if isinstance(x, int))
                if frames_there:
                    while buffered and not isinstance(buffered[0], int):
                        acks.send(t, buffered.pop(0))  # its frame was played before it arrived
                    buffered.pop(0)
                    played += 1
                    while buffered and isinstance(buffered[0], str):
                        acks.send(t, buffered.pop(0))
                elif played and sent > played:
                    underruns += 1  # playout had started and audio is owed: the caller hears a gap
                ticks += 1 if sent else 0
                if sent and played < total:
                    barge.append((sum(1 for x in buffered if isinstance(x, int)) + in_flight_frames) * FRAME)
            k += 1
        for chunk in inbound.due(t):
            jitter.update(t, float(chunk) * FRAME)  # type: ignore[arg-type]
        for item in outbound.due(t):
            buffered.append(item)
            in_flight_frames -= isinstance(item, int)
        for name in acks.due(t):
            pacer.acked(str(name), t)
        if t >= warmup:
            lead = policy.lead(rate, two_way, jitter.held_ms, pacer.recent_slip(t) * 1000)
            leads.append(lead.ms)
            presets.add(lead.preset.value if lead.preset else "fixed")
            while sent < total:
                wait = pacer.wait(t, lead.ms / 1000.0)
                if wait is None or wait > 0:
                    break
                outbound.send(t, sent)
                in_flight_frames += 1
                pacer.sent(t, FRAME, continuing=sent > 0)
                sent += 1
                if pacer.sync_due():
                    outbound.send(t, pacer.mark(MarkKind.SYNC).name)
        t += step
    base = policy.base(rate, two_way) if policy.adaptive else None
    clear = float(np.mean(link.delays(np.random.default_rng(seed + 1), 1000))) + FRAME / 2
    return Result(
        mode="adaptive" if policy.adaptive else f"fixed {policy.fixed_lead_ms:g} ms",
        preset=base.value if isinstance(base, Preset) else "fixed",
        underruns=underruns,
        ticks=ticks,
        barge_mean_ms=float(np.mean(barge)) * 1000 if barge else 0.0,
        barge_p95_ms=float(np.percentile(barge, 95)) * 1000 if barge else 0.0,
        clear_ms=clear * 1000,
        lead_mean_ms=float(np.mean(leads)) if leads else 0.0,
        jitter_ms=jitter.value_ms,
        presets_seen=tuple(sorted(presets)),
    )
