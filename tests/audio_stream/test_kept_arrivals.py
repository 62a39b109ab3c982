"""Hot-path audio is kept with its arrival time and placed with the frames after it: at a tick, when
enough is kept, or before anything that goes the usual way; the recording is the same, in order."""

from __future__ import annotations

import asyncio

import pytest
from test_handover_clock import ListSink, chunk_pcm, session

from media_mgr.audio_stream.arrivals import ARRIVALS_MAX
from media_mgr.audio_stream.events import Audio, BadInput
from media_mgr.audio_stream.session import Session


def furthest(s: Session) -> int:
    assert s.capture is not None
    return s.capture.assembler.furthest


def test_kept_frames_are_placed_at_the_tick_with_their_own_arrival_times() -> None:
    async def run() -> None:
        sink, now = ListSink(), [100.0]
        s = session("binary", sink, now, [True])
        for k in range(5):
            now[0] = 100.0 + 0.02 * k
            assert s.audio_now(chunk_pcm(k), now[0])
        assert furthest(s) == 0 and s.stats.chunks == 0  # kept, not placed yet
        assert s.last_arrival == now[0]  # but the session knows audio came (takeover, pause)
        now[0] += 0.2  # the tick comes late: the times kept are the frames' own, so no jitter
        await s.tick(now[0])
        assert furthest(s) == 5 * 160 and s.stats.chunks == 5
        assert s.capture is not None and s.capture.jitter_ms < 0.01
        await s.finish("eof", complete=True)
        assert bytes(sink.data) == b"".join(chunk_pcm(k) for k in range(5))

    asyncio.run(run())


def test_a_frame_that_goes_the_usual_way_is_placed_after_the_kept_ones() -> None:
    """A frame cut inside a sample goes the usual way; the kept frames before it go first."""

    async def run() -> None:
        sink, now = ListSink(), [100.0]
        s = session("binary", sink, now, [True])
        pcm = b"".join(chunk_pcm(k) for k in range(4))
        pieces = [pcm[:320], pcm[320:640], pcm[640:961], pcm[961:]]  # the third ends inside a sample
        for k, piece in enumerate(pieces):
            now[0] = 100.0 + 0.02 * k
            if not s.audio_now(piece, now[0]):
                await s.on_audio(Audio(piece), now[0])
        await s.finish("eof", complete=True)
        assert bytes(sink.data) == pcm

    asyncio.run(run())


def test_what_is_kept_is_bounded_and_placed_when_the_bound_is_reached() -> None:
    s = session("binary", ListSink(), [100.0], [True])
    for k in range(ARRIVALS_MAX - 1):
        assert s.audio_now(chunk_pcm(k), 100.0 + 0.02 * k)
    assert furthest(s) == 0
    assert s.audio_now(chunk_pcm(0), 100.0 + 0.02 * ARRIVALS_MAX)
    assert furthest(s) == ARRIVALS_MAX * 160 and not s._arrivals


def test_a_flood_is_raised_when_the_kept_frames_are_placed() -> None:
    """Audio far ahead of real time: the flood guard's fatal refusal, from the placing."""
    s = session("binary", ListSink(), [100.0], [True])

    def flood() -> None:
        for k in range(ARRIVALS_MAX * 10):  # a minute of audio within 0.3 s
            s.audio_now(bytes(32000), 100.0 + 0.001 * k)

    with pytest.raises(BadInput) as refused:
        flood()
    assert refused.value.fatal and "ahead of real time" in refused.value.reason
