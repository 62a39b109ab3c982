"""A stream's capture moved to another instance goes on where it stood: the recording position, the
gaps so far, and the lateness floor that tells the reconnect's gap from a stall, even when the
messages queued while the move ran are read in one go by an event loop that runs late then."""

from __future__ import annotations

import asyncio

from media_mgr.audio_stream.capture.clock import Chunk
from media_mgr.audio_stream.capture.pipeline import Capture
from media_mgr.audio_stream.formats import StreamFormat
from media_mgr.audio_stream.session import CatchUp

RATE, FRAME = 8000, 160
FMT = StreamFormat("voipbit", "l16", RATE, ("inbound",), (1,), "start")


class ListSink:
    id = "0" * 32

    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, data: bytes) -> bool:
        self.data += data
        return True

    async def finish(self, reason: str = "eof") -> object:
        return None

    async def abort(self, reason: str) -> object:
        return None


def capture(sink: ListSink, reliable: list[bool]) -> Capture:
    return Capture(FMT, sink, gap_threshold=0.06, gap_window=0.4, max_hold=2.0, record_lag=0.5,
                   timing_reliable=lambda: reliable[0])  # fmt: skip


def chunk_pcm(k: int) -> bytes:
    return bytes([k % 251 + 1, 0]) * FRAME  # every chunk tells which one it is


async def moved(handover_seconds: float, reliable_after_move: bool, *, metadata_first: bool = False) -> bytes:
    """75 chunks on A, the socket lost for 1.04 s (52 chunks dropped), 75 more read by B; B reads
    nothing while the move runs, then the backlog at once, its own loop then late or not."""
    a_sink, b_sink = ListSink(), ListSink()
    a = capture(a_sink, [True])
    t0 = 100.0
    for k in range(75):
        await a.put(0, Chunk(k * FRAME, chunk_pcm(k), t0 + 0.02 * k))
    await a.flush()
    # Each instance's arrival clock is its own monotonic clock: A's runs 1000 s behind the wall
    # clock, B's 2000 s; the state crosses on the wall clock.
    state = a.resume_state(1000.0)
    reliable = [reliable_after_move]
    b = capture(b_sink, reliable)
    b.resume(state, -2000.0)
    assert b.recorded_frames == 75 * FRAME
    first = t0 + 0.02 * 75 + 1.04 - 1000.0  # the reconnect's first message (B's clock), read before the move
    catch_up = CatchUp(RATE, first, first + handover_seconds + 1.0, reliable=True)
    for k in range(75):
        real = first + 0.02 * k
        # queued during the move (and the first audio too when the binary dialect's metadata,
        # read just before it, was what started the move)
        read = real if k == 0 and not metadata_first else max(real, first + handover_seconds)
        now = catch_up.arrival((75 + k) * FRAME, read) if catch_up.active(read) else read
        reliable[0] = catch_up.reliable if catch_up.active(read) else reliable_after_move
        await b.put(0, Chunk((75 + k) * FRAME, chunk_pcm(75 + k), now))
    await b.flush()
    return bytes(a_sink.data + b_sink.data)


def expected() -> bytes:
    return (
        b"".join(chunk_pcm(k) for k in range(75))
        + bytes(2 * 52 * FRAME)
        + b"".join(chunk_pcm(k) for k in range(75, 150))
    )


def test_the_gap_is_silence_where_it_belongs_however_long_the_move_took() -> None:
    for handover in (0.0, 0.3, 0.6, 1.2):
        assert asyncio.run(moved(handover, reliable_after_move=True)) == expected(), handover


def test_a_late_loop_after_the_move_does_not_splice_the_call() -> None:
    """The backlog's arrival times come from the media clock, not from our late reading of it."""
    for handover in (0.3, 0.6):
        assert asyncio.run(moved(handover, reliable_after_move=False)) == expected(), handover


def test_a_binary_reconnect_whose_metadata_started_the_move() -> None:
    """amigniter re-sends its metadata first: the move starts on it, and its audio is all read after."""
    for handover in (0.3, 0.6):
        for reliable in (True, False):
            assert asyncio.run(moved(handover, reliable, metadata_first=True)) == expected(), handover
