"""The pacer's virtual playout clock: never more than the lead queued, marks, slips, hold, clear."""

from __future__ import annotations

import pytest

from media_mgr.audio_stream.playout.pacer import SYNC_PREFIX, MarkKind, Pacer

F = 0.02


def test_frames_go_only_while_the_module_holds_less_than_the_lead() -> None:
    p = Pacer(F, sync_every=None)
    now, sent = 10.0, 0
    while (p.wait(now, 0.06) or 0) == 0 and sent < 100:
        p.sent(now, F, continuing=sent > 0)
        sent += 1
    assert sent == 4  # sent while est_end - now <= lead: 0, 20, 40, 60 ms queued before each
    assert p.wait(now, 0.06) == pytest.approx(0.02)
    assert p.buffered(now + 0.05) == pytest.approx(0.03)


def test_checkpoints_are_acknowledged_in_order_and_report_lateness() -> None:
    p = Pacer(F, sync_every=None)
    p.sent(0.0, 0.5, continuing=False)
    a = p.mark(MarkKind.CHECKPOINT, "a")
    p.sent(0.0, 0.5, continuing=True)
    p.mark(MarkKind.CHECKPOINT, "b")
    assert p.acked("nope", 0.5) == []
    acks = p.acked("b", 0.99)  # "a"'s acknowledgement was lost: done with "b" all the same
    assert [ack.mark.name for ack in acks] == ["a", "b"]
    assert a.due == 0.5 and not p.marks


def test_a_slip_moves_the_clock_only_once_acknowledgements_confirm_it() -> None:
    p = Pacer(F, sync_every=None)
    marks = []
    for i in range(12):
        p.sent(float(i), 1.0, continuing=i > 0)
        marks.append(p.mark(MarkKind.SYNC))
    moved = []
    for i, mark in enumerate(marks):
        slipped = 0.1 if i >= 5 else 0.0  # from the 6th mark on, the module plays 100 ms late
        noise = 0.012 if i == 2 else 0.0  # one slow trip back: not a slip
        before = p.est_end
        p.acked(mark.name, mark.due - F + 0.03 + slipped + noise)
        moved.append(round(p.est_end - before, 3))
    assert moved == [0.0] * 8 + [0.1] + [0.0] * 3  # the 4th late acknowledgement in a row confirms it
    assert p.slips == 1 and p.slip_total == 0.1


def test_a_module_that_does_not_play_holds_the_sending() -> None:
    p = Pacer(F, sync_every=0.2, hold_grace=0.5)
    p.sent(0.0, 0.2, continuing=False)
    mark = p.mark(MarkKind.SYNC)
    assert mark.name.startswith(SYNC_PREFIX)
    assert p.wait(0.69, 0.04) is not None
    assert p.wait(0.71, 0.04) is None  # 0.5 s past its due time and never acknowledged
    p.acked(mark.name, 0.72)
    assert p.wait(0.72, 0.04) == 0


def test_clear_forgets_marks_and_queued_audio() -> None:
    p = Pacer(F)
    p.sent(1.0, 3.0, continuing=False)
    p.mark(MarkKind.CHECKPOINT, "greet")
    cancelled = p.clear(1.5)
    assert [m.name for m in cancelled] == ["greet"]
    assert p.buffered(1.5) == 0 and not p.marks
