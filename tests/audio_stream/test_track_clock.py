"""Where chunks land in the recording: the media clock for bursts, arrival times for hidden gaps."""

from __future__ import annotations

from media_mgr.audio_stream.capture.clock import Chunk, ClockState, TrackClock

RATE, FRAME = 8000, 160  # 20 ms
PCM = bytes(2 * FRAME)


def clock() -> TrackClock:
    return TrackClock(RATE, 2, quantum=FRAME, gap_threshold=0.06, decide_after=0.4, max_hold=2.0)


def feed(c: TrackClock, chunk: int, arrival: float) -> list[int]:
    return [p.position for p in c.feed(Chunk(chunk * FRAME, PCM, arrival))]


def test_steady_chunks_go_where_the_media_clock_says() -> None:
    c = clock()
    placed = [pos for k in range(50) for pos in feed(c, k, 1.0 + 0.02 * k + (0.004 if k % 3 else 0))]
    assert placed == [k * FRAME for k in range(50)]
    assert c.gaps == 0


def test_a_burst_after_a_stall_keeps_its_place() -> None:
    c = clock()
    placed = [pos for k in range(10) for pos in feed(c, k, 1.0 + 0.02 * k)]
    # 1 s stall: chunks 10..59 held by the module, then sent back to back within 10 ms
    for k in range(10, 60):
        placed += feed(c, k, 2.2 + 0.0002 * (k - 10))
    for k in range(60, 80):
        placed += feed(c, k, 1.0 + 0.02 * k + 0.001)
    assert placed == [k * FRAME for k in range(80)]
    assert c.gaps == 0 and c.offset == 0


def test_a_pause_becomes_silence_of_its_length() -> None:
    c = clock()
    placed = [pos for k in range(10) for pos in feed(c, k, 1.0 + 0.02 * k)]
    # paused 1.3 s: the module skipped the ticks, its media clock stood still
    for k in range(10, 60):
        placed += feed(c, k, 1.0 + 0.02 * k + 1.3 + (0.003 if k % 2 else 0))
    assert c.state is ClockState.STEADY
    assert c.gaps == 1
    assert c.offset == round(1.3 * RATE)  # whole 20 ms frames: 65 of them
    assert placed == [k * FRAME for k in range(10)] + [k * FRAME + c.offset for k in range(10, 60)]


def test_a_late_chunk_that_catches_up_was_jitter_not_a_gap() -> None:
    c = clock()
    placed = [pos for k in range(10) for pos in feed(c, k, 1.0 + 0.02 * k)]
    placed += feed(c, 10, 1.0 + 0.2 + 0.15)  # 150 ms late: held
    assert c.state is ClockState.HOLDING
    placed += feed(c, 11, 1.0 + 0.22 + 0.001)  # the next is on time: it was jitter
    assert placed == [k * FRAME for k in range(12)]
    assert c.gaps == 0


def test_held_audio_is_bounded_by_max_hold() -> None:
    c = clock()
    feed(c, 0, 1.0)
    held = 0
    for k in range(1, 400):  # late and arriving 3x faster than real time, forever
        feed(c, k, 5.0 + 0.0066 * k)
        held = max(held, c.held_bytes)
    assert held <= 2 * FRAME * int(4.0 / 0.02)  # at most max_hold of media plus max_hold of waiting


def test_no_gap_is_inferred_while_our_own_process_runs_late() -> None:
    c = clock()
    placed = [pos for k in range(10) for pos in feed(c, k, 1.0 + 0.02 * k)]
    for k in range(10, 60):  # everything read 1.3 s late, as an overloaded server would read it
        placed += [p.position for p in c.feed(Chunk(k * FRAME, PCM, 2.5 + 0.02 * k), timing_reliable=False)]
    placed += [p.position for p in c.release()]
    assert c.gaps == 0
    assert placed == [k * FRAME for k in range(60)]


def test_late_chunks_read_while_our_process_runs_late_are_placed_at_once_not_held() -> None:
    """Holding them would decide nothing; under saturation it sent every frame the slow way."""
    c = clock()
    placed = [pos for k in range(10) for pos in feed(c, k, 1.0 + 0.02 * k)]
    for k in range(10, 30):
        got = c.feed(Chunk(k * FRAME, PCM, 1.5 + 0.02 * k), timing_reliable=False)  # 0.3 s late
        assert [p.position for p in got] == [k * FRAME]  # at once, by the media clock
        assert c.state is ClockState.STEADY and c.held_bytes == 0
        assert c.by_media(k * FRAME) == k * FRAME  # the hot path's way to the same place
    placed += [k * FRAME for k in range(10, 30)]
    placed += feed(c, 30, 1.0 + 0.02 * 30)  # on time again: the floor was left alone
    assert placed == [k * FRAME for k in range(31)]
    assert c.gaps == 0


def test_by_media_leaves_a_holding_clock_to_feed() -> None:
    c = clock()
    feed(c, 0, 1.0)
    assert feed(c, 1, 1.5) == []  # late with our timing reliable: held, stall or gap to be decided
    assert c.by_media(2 * FRAME) is None
