"""Pacing audio into the module so it never holds more than the lead; checkpoints and clear; pure.

The module appends whatever we send to an unbounded buffer and plays it at 1x, one 20 ms frame per
tick once a whole frame is there (reference A4.1). So the server decides how much is queued there.
``Pacer`` keeps a virtual playout clock: ``est_end`` is when the module will have played everything
sent so far, assuming it plays from the moment audio arrives. A frame may go out once
``est_end - now <= lead``: the frame is then due at the module ``lead`` from now, so transit jitter
up to about the lead causes no underrun, and barge-in by simply stopping costs at most the lead.

The module's only feedback is ``playedStream`` for a checkpoint (A4.3). Every acknowledged mark
corrects the clock when playout runs later than estimated (an underrun there, a late start, a parked
channel), and ``sync_every`` seconds of audio carry an internal mark so the correction comes often;
when a sync mark is overdue by ``hold_grace`` the module is not playing and sending stops, so what
the module holds stays bounded even then.

Sync marks reach FreeSWITCH: the module fires ``mod_audio_stream::media_play_complete`` for every
checkpoint it plays out, ours included, about once a second while media plays. Their names are
always ``SYNC_PREFIX`` and a counter (``media_mgr.internal.sync.1``, ``.2``...), and
``POST /v1/streams/{id}/play`` refuses checkpoint names with that prefix, so an application that waits
for its own "play complete" ignores every event whose name starts with ``media_mgr.internal.sync.``.
``MEDIA_MGR_PLAYOUT_SYNC_MS=0`` sends none. Then only the application's own checkpoints correct the
clock: underruns at the module go unnoticed (the lead neither grows for them nor is the estimate
moved, so the module's real buffer, and barge-in, creep up after each), and a channel that stops
playing is not noticed at all (``bench/audio_stream_buffering.py``, mode "adaptive, no sync").
"""

from __future__ import annotations

import enum
import itertools
import math
from collections import deque
from dataclasses import dataclass

SYNC_PREFIX = "media_mgr.internal.sync."  # never a name an application chose
LATE_WINDOW = 32  # acknowledgements whose least lateness is the baseline (start-up, the trip back)
CONFIRM_ACKS = 4  # this many in a row must show playout late before the clock moves
SLIP_MEMORY = 30.0  # seconds over which a confirmed slip keeps adding to the lead (decay constant)


class MarkKind(enum.Enum):
    CHECKPOINT = "checkpoint"
    SYNC = "sync"


@dataclass(frozen=True)
class Mark:
    name: str
    kind: MarkKind
    due: float  # when the audio before it should have finished playing, on our clock


@dataclass(frozen=True)
class Ack:
    """A mark acknowledged: how much later than estimated it was heard (0 if on time)."""

    mark: Mark
    late: float


class Pacer:
    def __init__(self, frame: float, *, sync_every: float | None = 1.0, hold_grace: float = 1.0) -> None:
        if frame <= 0:
            raise ValueError("frame must be positive")
        self.frame = frame
        self.sync_every = sync_every if sync_every and sync_every > 0 else None
        self.hold_grace = hold_grace
        self.est_end = 0.0
        self.marks: deque[Mark] = deque()
        self.starved = 0  # times we sent after the estimated buffer had run dry mid-item
        self.slips = 0  # acknowledgements showing the module played later than estimated
        self.slip_total = 0.0
        self._since_sync = 0.0
        self._sync_ids = itertools.count(1)
        self._lates: deque[float] = deque(maxlen=LATE_WINDOW)  # acknowledgements' lateness, recent
        self._excess: deque[float] = deque(maxlen=CONFIRM_ACKS)
        self._slip = (0.0, 0.0)  # (size, when) of the last confirmed slip

    def buffered(self, now: float) -> float:
        """Audio the module is estimated to hold (including the frame playing now), seconds."""
        return max(0.0, self.est_end - now)

    def held(self, now: float) -> bool:
        """Whether sending must stop: a sync mark is overdue, so the module is not playing."""
        for mark in self.marks:
            if mark.kind is MarkKind.SYNC:
                return now > mark.due + self.hold_grace
        return False

    def wait(self, now: float, lead: float) -> float | None:
        """Seconds until the next frame may go (0: now); None while held (wait for an ack)."""
        if self.held(now):
            return None
        return max(0.0, self.est_end - lead - now)

    def sent(self, now: float, seconds: float, *, continuing: bool) -> None:
        """Account ``seconds`` of audio sent at ``now``; ``continuing``: mid-item (not its first frame)."""
        if continuing and self.est_end < now:
            self.starved += 1
        self.est_end = max(self.est_end, now) + seconds
        self._since_sync += seconds

    def sync_due(self) -> bool:
        return self.sync_every is not None and self._since_sync >= self.sync_every

    def mark(self, kind: MarkKind, name: str | None = None) -> Mark:
        """A mark at the end of what was sent; a sync mark gets its own name."""
        if kind is MarkKind.SYNC:
            name = f"{SYNC_PREFIX}{next(self._sync_ids)}"
            self._since_sync = 0.0
        if name is None:
            raise ValueError("a checkpoint needs a name")
        mark = Mark(name, kind, self.est_end)
        self.marks.append(mark)
        return mark

    def acked(self, name: str, now: float) -> list[Ack]:
        """``playedStream`` for ``name``: marks are acknowledged in order, so earlier ones are done too.

        The module acknowledges when it takes the last frame before the mark, so that audio ends
        about one frame after the acknowledgement left it. Lateness against our estimate has a
        baseline (start-up, the trip back: the least of recent acknowledgements); lateness above it
        in ``CONFIRM_ACKS`` acknowledgements in a row is playout running late (underruns there, a
        channel not playing), and moves the clock by whole ticks. A few late acknowledgements alone
        may be slow trips back, and moving the clock for them would starve the module.
        """
        if not any(m.name == name for m in self.marks):
            return []
        done: list[Ack] = []
        while self.marks:
            mark = self.marks.popleft()
            if mark.name != name:
                done.append(Ack(mark, 0.0))
                continue
            late = now + self.frame - mark.due
            self._lates.append(late)
            excess = late - min(self._lates)
            self._excess.append(excess)
            confirmed = min(self._excess)
            if len(self._excess) == CONFIRM_ACKS and confirmed >= 0.75 * self.frame:
                shift = round(confirmed / self.frame) * self.frame  # the module slips by whole ticks
                self.est_end += shift
                self.marks = deque(Mark(m.name, m.kind, m.due + shift) for m in self.marks)
                for i in range(1, CONFIRM_ACKS + 1):
                    self._lates[-i] -= shift
                self._excess.clear()
                self.slips += 1
                self.slip_total += shift
                self._slip = (max(shift, self.recent_slip(now)), now)
            done.append(Ack(mark, excess))
            break
        return done

    def recent_slip(self, now: float) -> float:
        """The size of recent underruns at the module (seconds), fading over ``SLIP_MEMORY``: what
        the lead lacked, so the lead grows by it (jitter alone misses rare long delays)."""
        size, when = self._slip
        return size * math.exp(-max(0.0, now - when) / SLIP_MEMORY) if size else 0.0

    def clear(self, now: float) -> list[Mark]:
        """Barge-in: the module empties its buffer and forgets its checkpoints; returns ours, cancelled."""
        cancelled = list(self.marks)
        self.marks.clear()
        self.est_end = now
        self._lates.clear()
        self._excess.clear()
        self._since_sync = 0.0
        return cancelled
