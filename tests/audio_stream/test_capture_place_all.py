"""``Capture.place_all`` (the kept frames placed together, consecutive ones written as one) leaves
the capture exactly as ``place_at`` frame by frame would: the same recording, jitter, gaps, drops."""

from __future__ import annotations

import random

import pytest

from media_mgr.audio_stream.capture.pipeline import Capture
from media_mgr.audio_stream.formats import StreamFormat

RATE = 8000
FRAME = 160  # samples in 20 ms


def capture(two_tracks: bool, reliable: bool) -> Capture:
    tracks, channels = (("inbound", "outbound"), (1, 1)) if two_tracks else (("inbound",), (1,))
    fmt = StreamFormat("voipbit", "l16", RATE, tracks, channels, "url")  # type: ignore[arg-type]
    return Capture(fmt, None, gap_threshold=0.06, gap_window=0.4, max_hold=2.0, record_lag=0.5,
                   timing_reliable=lambda: reliable)  # fmt: skip


def frames(seed: int, tracks: int) -> list[tuple[int, int, bytes, float]]:
    """A stream with what a real link does to it: jitter, stalls and their bursts, real gaps (the
    media clock jumps on), a frame that arrives twice, a late one over the one before it, a short
    frame and one cut inside a sample."""
    rnd = random.Random(seed)
    out: list[tuple[int, int, bytes, float]] = []
    media, due, now, blocked, overlapped = 0, 100.0, 100.0, 0.0, False
    for k in range(600):
        due += 0.02
        event = rnd.random()
        if overlapped or event < 0.02:  # a stall: nothing comes until then, then a burst
            blocked, overlapped = due + rnd.choice([0.1, 0.15, 0.3, 0.8]), False
        elif event < 0.03:
            due += rnd.choice([0.2, 1.0])  # a gap: the module sent nothing, its clock did not move
        now = max(now + 0.0005, due + abs(rnd.gauss(0, 0.002)), blocked)
        size = 2 * FRAME
        if event > 0.995:
            size = 2 * FRAME - 2 * rnd.randrange(1, 20)
        elif event > 0.99:
            size = 2 * FRAME - 1
        for track in range(tracks):
            pcm = bytes([(k * 7 + track * 3 + i) % 251 for i in range(size)])
            out.append((track, media, pcm, now))
            if event > 0.98 and event < 0.985:
                out.append((track, media, pcm, now + 0.0002))  # the same frame again
        media += size // 2
        if 0.97 < event < 0.975:
            media -= FRAME  # the next one overlaps this one, and comes after a stall
            overlapped = True
    return out


def state(c: Capture) -> tuple[object, ...]:
    asm = c.assembler
    return (
        [bytes(t.window) for t in asm.tracks], [t.end for t in asm.tracks], asm.head, asm.dropped_frames,
        [(j.jitter, j.peak, j.held, j.samples) for j in c.jitter],
        [(k.offset, k.gaps, k.state, k._floor, len(k._held)) for k in c.clocks],
    )  # fmt: skip


@pytest.mark.parametrize("reliable", [True, False])
@pytest.mark.parametrize("two_tracks", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_place_all_is_place_at_frame_by_frame(seed: int, two_tracks: bool, reliable: bool) -> None:
    kept = frames(seed, 2 if two_tracks else 1)
    one, together = capture(two_tracks, reliable), capture(two_tracks, reliable)
    rnd = random.Random(seed)
    i = 0
    while i < len(kept):
        n = rnd.randint(1, 40)  # kept runs of any length, as ticks and bounds cut them
        for frame in kept[i : i + n]:
            one.place_at(*frame)
        together.place_all(kept[i : i + n])
        i += n
        if rnd.random() < 0.2:  # the recording takes what is complete meanwhile
            upto = max(one.assembler.complete, one.assembler.furthest - one.lag_frames)
            assert one.assembler.take(upto) == together.assembler.take(upto)
        assert state(one) == state(together)
    assert state(one) == state(together)
    assert one.gaps == together.gaps and one.assembler.furthest > 600 * FRAME // 2


def test_frames_written_together_are_in_the_recording_in_order() -> None:
    """Consecutive frames written as one land where each would have: the bytes, in order."""
    c = capture(False, True)
    pcms = [bytes([k]) * (2 * FRAME) for k in range(10)]
    c.place_all([(0, k * FRAME, pcm, 100.0 + 0.02 * k) for k, pcm in enumerate(pcms)])
    assert c.assembler.take(10 * FRAME) == b"".join(pcms)
    assert c.jitter[0].samples == 10
