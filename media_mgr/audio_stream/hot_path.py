"""The hot path of a connection: audio placed from the listener's frame callback, no task woken.

A listener that calls back per frame (``listener.py``, picows) hands each frame here while nothing
is queued before it. Audio of a session that is recording gets its place on the media clock at once
and is kept; the session's next tick (or anything else that reads the capture) places what was kept
together, and the recording gets it then (``Session.place_arrivals``). voipbit's ``media`` is
parsed from the frame's bytes by one ``orjson.loads`` with its fields checked in place
(``voipbit.media_fast``): no text decoded, no event built. Anything else (control frames, a frame
that is not the common case, a session opening) goes the usual way, through the connection's task,
in order, after what was kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from media_mgr.audio_stream.dialects.binary import BinaryDialect
from media_mgr.audio_stream.dialects.voipbit import VoipbitDialect, media_fast
from media_mgr.audio_stream.events import Audio, BadInput, Event, Media
from media_mgr.errors import MediaMgrError

if TYPE_CHECKING:
    from media_mgr.audio_stream.service import AudioStreamService
    from media_mgr.audio_stream.session import Session


class HotPath:
    """Mixed into ``connection.Connection``, whose state it reads."""

    service: AudioStreamService
    session: Session | None
    clock: Callable[[], float]
    last_frame: float
    _counted: dict[tuple[str, str], Any]
    _uncounted: dict[tuple[str, str], int]
    _hot_frames: int
    _hot_binary: int

    def frame_now(self, text: str | None, data: bytes | None) -> bool | Exception:
        """The hot path: a listener calls it as a frame arrives while nothing is queued before it.
        Audio of a session that is recording is placed at once, with no task woken (the recording
        gets it at the next tick); True then. False: the frame goes the usual way (``receive``).
        An exception: the frame was taken, and what it raised is for ``_loop`` to handle."""
        session = self.session
        if session is None or not session.hot or session.ending or session.owner is not self:
            return False
        dialect = session.dialect
        event: Event
        if data is not None:
            if not data or not isinstance(dialect, BinaryDialect):
                return False
            event = Audio(data)
        elif isinstance(dialect, VoipbitDialect):  # stateless parse: a frame given back is parsed again
            try:
                event = dialect.parse(text, None)
            except BadInput:
                return False
            if not isinstance(event, Media):
                return False
        else:
            return False
        now = self.last_frame = self.clock()
        self._count(dialect.name, "audio")
        try:
            session.on_audio_now(event, now)
        except (BadInput, MediaMgrError) as exc:
            return exc
        return True

    def queued_now(self, text: str | None, data: bytes | None, at: float) -> bool | Exception:
        """A frame that was queued (arrived while the connection's task was busy, at ``at``), taken
        the hot path's way by that task, in order: as ``text_now``/``binary_now``. Without it, a
        connection that fell behind once handled every later frame the slow way and never caught up."""
        if data is not None:
            return self.binary_now(data, at)
        if text is None or not isinstance(getattr(self.session, "dialect", None), VoipbitDialect):
            return False
        return self.text_now(text.encode(), at)

    def text_now(self, raw: bytes | memoryview, at: float | None = None) -> bool | Exception:
        """voipbit's hot path, before the frame is even decoded to text: its ``media`` parsed and
        placed (``voipbit.media_fast``, ``Session.media_now``) with no event built. True: taken;
        False: nothing done, the frame goes the usual way; an exception as ``frame_now``."""
        session = self.session
        if session is None or not session.hot or session.ending or session.owner is not self:
            return False
        if not isinstance(session.dialect, VoipbitDialect):
            return False
        got = media_fast(raw)
        if got is None:
            return False
        now = self.clock() if at is None else at
        try:
            if not session.media_now(*got, now):
                return False
        except (BadInput, MediaMgrError) as exc:
            taken: bool | Exception = exc
        else:
            taken = True
        self.last_frame = now
        self._hot_frames += 1
        return taken

    def binary_now(self, data: bytes, at: float | None = None) -> bool | Exception:
        """The binary dialect's hot path: a frame of whole sample frames placed
        (``Session.audio_now``) with no event built. True, False, an exception: as ``text_now``."""
        session = self.session
        if session is None or not session.hot or session.ending or session.owner is not self or not data:
            return False
        now = self.clock() if at is None else at
        try:
            if not session.audio_now(data, now):
                return False
        except (BadInput, MediaMgrError) as exc:
            taken: bool | Exception = exc
        else:
            taken = True
        self.last_frame = now
        self._hot_binary += 1
        return taken

    def _count(self, dialect: str, kind: str, n: int = 1) -> None:
        """Frames are counted here and added to the metric at each tick (a counter's lock per frame
        was a measurable part of the hot path)."""
        key = (dialect, kind)
        self._uncounted[key] = self._uncounted.get(key, 0) + n

    def _flush_counts(self) -> None:
        if self._hot_frames:
            self._count(VoipbitDialect.name, "audio", self._hot_frames)
            self._hot_frames = 0
        if self._hot_binary:
            self._count(BinaryDialect.name, "audio", self._hot_binary)
            self._hot_binary = 0
        for key, n in self._uncounted.items():
            counter = self._counted.get(key)
            if counter is None:
                counter = self._counted[key] = self.service.metrics.audio_stream_frames.labels(*key)
            counter.inc(n)
        self._uncounted.clear()
