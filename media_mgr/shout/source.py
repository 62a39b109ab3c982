"""One connected source: its body goes, as it arrives, to the recording and to the live mount.

The protocol hands body bytes over with ``feed``; a task of ours moves them on: every byte to the
recording's ``Ingest`` (stored as sent), whole MP3 frames to the ``Mount`` (so listeners joining
later start on a frame). Reading pauses while more than ``buffer_bytes`` wait, so a slow database
slows the source (TCP backpressure) instead of growing memory. The session ends on EOF (the
recording is ``complete``), on a limit (``complete``, the connection is closed), on a reset, a
source silent for ``silence_timeout`` or a server shutdown (``interrupted``, the audio kept).
The server runs ``run()`` in its task set; whatever way it ends, the mount is released.

Hostile or broken sources: the body is held back (at most ``HOLD_BYTES``) until ``CONFIRM_FRAMES``
MPEG frames came in a row, so what is not MP3 is never stored (PCM has false frame syncs: two in a
row happen). Not so within ``SNIFF_BYTES`` after an ID3v2 tag, or a stream that ends with bytes
mostly not in frames, ends the recording ``interrupted`` with
``end_reason`` ``not_mpeg`` (a PUT then gets 415 as its final answer). A source that ends before
sending any audio (0 bytes, or cut off before its first frame) does not use its recording up: it is
given back (``pending``), so the same URL works when mod_shout tries again; an ad-hoc recording
(made for the mount by the source password) is closed ``interrupted`` with ``no_audio`` instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from media_mgr.audio.mpeg import MpegFramer, id3v2_length
from media_mgr.errors import MediaMgrError
from media_mgr.live.mount import Mount
from media_mgr.live.registry import MountRegistry
from media_mgr.media.activity import Activity
from media_mgr.recording.ingest import Ingest
from media_mgr.recording.models import Recording

log = logging.getLogger("media_mgr.shout")
# What a source is refused (or a recording not closed) for: ours, or the database away.
SNIFF_BYTES = 16 * 1024  # after an ID3v2 tag, MPEG must show within this many bytes
CONFIRM_FRAMES = 4  # frames in a row that make a stream MPEG (PCM has false syncs, seldom four)
HOLD_BYTES = 256 * 1024  # held back (not stored) at most until the first frame; past it, written
NOT_MPEG_REPLY = (b"HTTP/1.1 415 Unsupported Media Type\r\nContent-Type: text/plain\r\nContent-Length: 29\r\n"
                  b"Connection: close\r\n\r\nno MPEG audio frame received\n")  # fmt: skip
GiveBack = Callable[[Ingest], Awaitable[None]]


class SourceSession:
    def __init__(
        self,
        transport: asyncio.Transport,
        mount: Mount,
        registry: MountRegistry,
        ingest: Ingest,
        *,
        buffer_bytes: int,
        silence_timeout: float,
        final_reply: bytes = b"",
        give_back: GiveBack | None = None,
    ) -> None:
        self.transport = transport
        self.mount = mount
        self.registry = registry
        self.ingest = ingest
        self.buffer_bytes = buffer_bytes
        self.silence_timeout = silence_timeout
        self.final_reply = final_reply
        self.give_back = give_back  # None: an ad-hoc recording, closed as ``no_audio`` when empty
        self.received = 0
        self.result: Recording | None = None
        self.activity: Activity | None = None  # its entry in GET /v1/streams
        self.task: asyncio.Task[None] | None = None  # run() in the server's task set
        self._buf = bytearray()
        self._paused = False
        self._ending: str | None = None  # why the stream ends, once known
        self._wake = asyncio.Event()
        self._framer = MpegFramer()
        self._held: bytearray | None = bytearray()  # None once audio is known to be MPEG (or too much)
        self._start = bytearray()  # the first 10 bytes: an ID3v2 tag's header, if one
        self._sniffed = 0  # bytes the framer has seen
        self._framed = 0  # of which in frames
        self._tag: int | None = None  # the length of the ID3v2 tag at the start (0 without), once known
        self._mpeg = False  # the stream is known to be MPEG audio
        self._last_data = asyncio.get_running_loop().time()
        self._silence: asyncio.TimerHandle | None = None

    # -- called by the protocol (synchronously, from the event loop) -------------------------------

    def feed(self, data: bytes) -> None:
        if self._ending is not None:
            return
        self._buf += data
        self.received += len(data)
        self._last_data = asyncio.get_running_loop().time()
        if len(self._buf) >= self.buffer_bytes and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        self._wake.set()

    def end_of_stream(self) -> None:
        self._end("eof")

    def connection_lost(self, exc: BaseException | None) -> None:
        self._end("eof" if exc is None else "reset")

    def stop(self, reason: str = "shutdown") -> None:
        self._end(reason)

    # -- the task ----------------------------------------------------------------------------------

    def _end(self, reason: str) -> None:
        if self._ending is None:
            self._ending = reason
        self._wake.set()

    def _check_silence(self) -> None:
        loop = asyncio.get_running_loop()
        quiet = loop.time() - self._last_data
        if quiet >= self.silence_timeout:
            log.info("source silent; ending it", extra={"mount": self.mount.name, "seconds": round(quiet, 1)})
            self._end("silence")
        else:
            self._silence = loop.call_later(self.silence_timeout - quiet, self._check_silence)

    async def run(self) -> None:
        reason = "eof"
        loop = asyncio.get_running_loop()
        self._silence = loop.call_later(self.silence_timeout, self._check_silence)
        try:
            reason = await self._pump()
        except MediaMgrError as exc:  # the database gave up on it, or it was closed elsewhere
            log.warning("recording failed", extra={"mount": self.mount.name, "error": exc.detail})
            reason = "store_failure"
        finally:
            self._silence.cancel()
            if self._empty():  # given back before the mount is free, so a retry finds it pending
                reason = await self._close_recording(reason)
                self.registry.release(self.mount)
            else:
                self.registry.release(self.mount)
                reason = await self._close_recording(reason)
            if not self.transport.is_closing():
                if self.final_reply and reason in ("eof", "limit_duration", "limit_size"):
                    self.transport.write(self.final_reply)
                elif self.final_reply and reason == "not_mpeg":
                    self.transport.write(NOT_MPEG_REPLY)
                self.transport.close()

    async def _pump(self) -> str:
        """Move bytes on until the stream ends; returns why it ended."""
        while True:
            if self._buf:
                data = bytes(self._buf)
                self._buf.clear()
                if self._paused:
                    self._paused = False
                    self.transport.resume_reading()
                frames, _ = self._framer.feed(data)
                if frames:
                    self.mount.publish(frames)
                self._framed += len(frames)
                keep = self._sniff(data)
                if keep is None:
                    return "not_mpeg"
                if keep and not await self.ingest.write(keep):
                    return self.ingest.limit_reason or "limit_size"
                continue
            if self._ending is not None:
                if self._ending == "eof":
                    frames = self._framer.flush()
                    self.mount.publish(frames)
                    self._framed += len(frames)
                    if self._held and self._short_mpeg():
                        data, self._held = bytes(self._held), None
                        if not await self.ingest.write(data):
                            return self.ingest.limit_reason or "limit_size"
                return self._ending
            self._wake.clear()
            await self._wake.wait()

    def _sniff(self, data: bytes) -> bytes | None:
        """What to store of ``data`` now: held back until ``CONFIRM_FRAMES`` frames came in a row,
        then everything held; None when that did not happen within ``SNIFF_BYTES`` after any tag."""
        self._sniffed += len(data)
        if len(self._start) < 10:
            self._start += data[: 10 - len(self._start)]
            if len(self._start) == 10:
                self._tag = id3v2_length(self._start)
        if not self._mpeg and self._framer.frames >= CONFIRM_FRAMES:
            self._mpeg = True
        if self._mpeg:
            if self._held is None:
                return data
            out, self._held = bytes(self._held) + data, None
            return out
        if self._tag is not None and self._sniffed >= self._tag + SNIFF_BYTES:
            return None
        if self._held is None:  # a tag too large to hold: stored as it comes
            return data
        self._held += data
        if len(self._held) > HOLD_BYTES:
            out, self._held = bytes(self._held), None
            return out
        return b""

    def _short_mpeg(self) -> bool:
        """At the end of a stream too short for ``CONFIRM_FRAMES``: MPEG if frames are most of it."""
        if not self._mpeg and self._framer.frames:
            self._mpeg = self._framed * 2 >= self._sniffed - (self._tag or 0)
        return self._mpeg

    def _empty(self) -> bool:
        """Nothing of this source was stored (nothing came, or it was cut off before a frame)."""
        return self.ingest.size == self.ingest.recording.size

    async def _close_recording(self, reason: str) -> str:
        """Close (or give back) the recording; returns the reason it was closed for."""
        if reason == "eof" and self._sniffed and not self._short_mpeg():
            reason = "not_mpeg"  # it ended having sent bytes, none of them audio
        if reason == "not_mpeg":
            extra = {"mount": self.mount.name, "recording_id": self.ingest.id, "bytes": self.received}
            log.info("source sent no MPEG audio; recording ended as not_mpeg", extra=extra)
        elif self._empty() and reason not in ("limit_duration", "limit_size"):
            await self._close_empty(reason)
            return reason
        try:
            if reason in ("eof", "limit_duration", "limit_size"):
                self.result = await self.ingest.finish(reason)
            else:
                self.result = await self.ingest.abort(reason)
        except MediaMgrError as exc:  # StoreUnavailable is one
            log.warning("recording not closed yet; the recorder keeps trying",
                        extra={"recording_id": self.ingest.id, "error": repr(exc)})  # fmt: skip
        return reason

    async def _close_empty(self, reason: str) -> None:
        """No audio: give the recording back for the next try, or close an ad-hoc one as ``no_audio``."""
        extra = {"mount": self.mount.name, "recording_id": self.ingest.id, "reason": reason}
        if self.give_back is not None:
            log.info("source ended without audio; recording given back", extra=extra)
            await self.give_back(self.ingest)
            return
        log.info("source ended without audio", extra=extra)
        try:
            self.result = await self.ingest.abort("no_audio")
        except MediaMgrError as exc:  # StoreUnavailable is one
            log.warning("recording not closed yet; the recorder keeps trying",
                        extra={"recording_id": self.ingest.id, "error": repr(exc)})  # fmt: skip
