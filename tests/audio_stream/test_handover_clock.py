"""A session moved to another instance goes on where it stood: the recording position, the gaps so
far, and the lateness floor that tells the reconnect's gap from a stall. The messages the module
sent while the move ran are read in one go afterwards, maybe by an event loop that runs late then:
the gap still comes out as silence of its length, in place (both dialects)."""

from __future__ import annotations

import asyncio
from typing import Any

from media_mgr.audio_stream.capture.pipeline import Capture
from media_mgr.audio_stream.catch_up import CatchUp
from media_mgr.audio_stream.dialects.base import Dialect
from media_mgr.audio_stream.dialects.binary import BinaryDialect
from media_mgr.audio_stream.dialects.voipbit import VoipbitDialect
from media_mgr.audio_stream.events import Audio, Media
from media_mgr.audio_stream.formats import FormatHint, StreamFormat
from media_mgr.audio_stream.session import Session, SessionConfig, SessionState

RATE, FRAME = 8000, 160
BEFORE, DROPPED, AFTER = 75, 52, 75  # chunks on A, dropped while reconnecting, on B
CONFIG = SessionConfig()


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


def chunk_pcm(k: int) -> bytes:
    return bytes([k % 251 + 1, 0]) * FRAME  # every chunk says which one it is


def new_dialect(name: str) -> Dialect:
    cls = VoipbitDialect if name == "voipbit" else BinaryDialect
    return cls(FormatHint(RATE, 1), None, metadata_timeout=1.0)


def message(name: str, sent: int, k: int) -> Media | Audio:
    """The ``sent``-th message (its ``chunk`` counts only what was sent: A1.8), carrying chunk ``k``
    of the call's audio."""
    if name == "voipbit":
        return Media("call", "inbound", sent + 1, None, chunk_pcm(k))
    return Audio(chunk_pcm(k))


def session(name: str, sink: ListSink, now: list[float], reliable: list[bool]) -> Session:
    async def no_sink(s: Session, fmt: StreamFormat) -> ListSink:
        raise AssertionError("the format is set up by the test")

    s = Session("1" * 32, "key", new_dialect(name), path="/audio_stream", peer="", config=CONFIG,
                open_sink=no_sink, publish=lambda *a: None, clock=lambda: now[0],
                timing_reliable=lambda: reliable[0])  # fmt: skip
    fmt = StreamFormat(name, "l16", RATE, ("inbound",), (1,), "url")
    s.fmt, s.sink, s.state = fmt, sink, SessionState.ACTIVE
    c = CONFIG
    s.capture = Capture(fmt, sink, gap_threshold=c.gap_threshold, gap_window=c.gap_window,
                        max_hold=c.max_hold, record_lag=c.record_lag, timing_reliable=lambda: reliable[0])  # fmt: skip
    return s


async def moved(name: str, handover: float, late_backlog: bool, *, metadata_first: bool = False) -> bytes:
    """A records 1.5 s and the socket is lost; 1.04 s later the module reconnects to B. B reads its
    first message (voipbit: audio; amigniter: the metadata), moves the session over in ``handover``
    seconds reading nothing, then reads the backlog at once, its loop late meanwhile (``late_backlog``)
    or not; then real time. Arrival clocks: A's is 1000 s behind the wall clock, B's 2000 s."""
    a_sink, b_sink = ListSink(), ListSink()
    now_a = [100.0]
    a = session(name, a_sink, now_a, [True])
    for k in range(BEFORE):
        now_a[0] = 100.0 + 0.02 * k
        await a.on_audio(message(name, k, k), now_a[0])
    await a.detach(now_a[0])
    dialect_state, capture_state = a.dialect.resume_state(), a.capture.resume_state(1000.0)  # type: ignore[union-attr]

    first = 100.0 + 0.02 * (BEFORE + DROPPED) - 1000.0  # B's clock
    now_b, reliable = [first + handover], [True]
    b = session(name, b_sink, now_b, reliable)
    b.dialect.resume(dialect_state)
    b.capture.resume(capture_state, -2000.0)  # type: ignore[union-attr]
    b.catch_up = CatchUp(RATE, now_b[0])  # as handover.py sets it
    for k in range(AFTER):
        real = first + 0.02 * k
        backlog = real < first + handover and (k > 0 or metadata_first)
        read = first + handover if backlog else real
        reliable[0] = not (late_backlog and backlog)
        now_b[0] = max(now_b[0], read)
        await b.on_audio(message(name, BEFORE + k, BEFORE + DROPPED + k), read)
        if k % 12 == 11:
            await b.tick(now_b[0])
    await b.finish("eof", complete=True)
    return bytes(a_sink.data + b_sink.data)


def expected() -> bytes:
    return (b"".join(chunk_pcm(k) for k in range(BEFORE)) + bytes(2 * DROPPED * FRAME)
            + b"".join(chunk_pcm(k) for k in range(BEFORE + DROPPED, BEFORE + DROPPED + AFTER)))  # fmt: skip


def check(name: str, handover: float, late_backlog: bool, **kwargs: Any) -> None:
    got = asyncio.run(moved(name, handover, late_backlog, **kwargs))
    assert got == expected(), (name, handover, late_backlog, len(got) // 2, len(expected()) // 2)


def test_a_voipbit_gap_is_silence_where_it_belongs_however_long_the_move_took() -> None:
    for handover in (0.0, 0.3, 0.6, 0.9):
        check("voipbit", handover, False)


def test_a_late_loop_while_the_backlog_is_read_does_not_splice_the_call() -> None:
    """The backlog's arrival times come from the media clock and a message read on time, not from
    our late reading of it, so a loop late only then takes nothing from them."""
    for handover in (0.3, 0.6):
        check("voipbit", handover, True)


def test_an_amigniter_reconnect_whose_metadata_started_the_move() -> None:
    """amigniter re-sends its metadata first: the move starts on it, and its audio is all read after."""
    for handover, late in ((0.05, False), (0.3, False), (0.6, False), (0.9, False), (0.6, True)):
        check("binary", handover, late, metadata_first=True)


def test_the_hot_path_places_late_audio_at_once_while_our_loop_runs_late() -> None:
    """Binary frames read 0.3 s late, the loop known to be late: each placed by the media clock as it
    comes (nothing held, no gap), and recorded in order."""

    async def run() -> bytes:
        sink, now, reliable = ListSink(), [100.0], [True]
        s = session("binary", sink, now, reliable)
        for k in range(60):
            late = 0.3 if 10 <= k < 50 else 0.0
            reliable[0] = late == 0.0
            now[0] = 100.0 + 0.02 * k + late
            assert s.audio_now(chunk_pcm(k), now[0])
            s.place_arrivals()  # as a tick would, with the timing of that moment
            assert s.capture is not None and s.capture.clocks[0].held_bytes == 0
        await s.finish("eof", complete=True)
        assert s.capture is not None and s.capture.gaps == 0
        return bytes(sink.data)

    assert asyncio.run(run()) == b"".join(chunk_pcm(k) for k in range(60))
