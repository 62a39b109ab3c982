"""One connected source: its body goes, as it arrives, to the recording and to the live mount.

The protocol hands body bytes over with ``feed``; a task of ours moves them on: every byte to the
recording's ``Ingest`` (stored as sent), whole MP3 frames to the ``Mount`` (so listeners joining
later start on a frame). Reading pauses while more than ``buffer_bytes`` wait, so a slow database
slows the source (TCP backpressure) instead of growing memory. The session ends on EOF (the
recording is ``complete``), on a limit (``complete``, the connection is closed), on a reset, a
source silent for ``silence_timeout`` or a server shutdown (``interrupted``, the audio kept).
The server runs ``run()`` in its task set; whatever way it ends, the mount is released.
"""

from __future__ import annotations

import asyncio
import logging

from media_mgr.audio.mpeg import MpegFramer
from media_mgr.errors import MediaMgrError
from media_mgr.live.mount import Mount
from media_mgr.live.registry import MountRegistry
from media_mgr.media.activity import Activity
from media_mgr.recording.ingest import Ingest
from media_mgr.recording.models import Recording
from media_mgr.store.recordings import STORE_ERRORS

log = logging.getLogger("media_mgr.shout")
# What a source is refused (or a recording not closed) for: ours, or the database away.
REFUSALS: tuple[type[BaseException], ...] = (MediaMgrError, *STORE_ERRORS)


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
    ) -> None:
        self.transport = transport
        self.mount = mount
        self.registry = registry
        self.ingest = ingest
        self.buffer_bytes = buffer_bytes
        self.silence_timeout = silence_timeout
        self.final_reply = final_reply
        self.received = 0
        self.result: Recording | None = None
        self.activity: Activity | None = None  # its entry in GET /v1/streams
        self.task: asyncio.Task[None] | None = None  # run() in the server's task set
        self._buf = bytearray()
        self._paused = False
        self._ending: str | None = None  # why the stream ends, once known
        self._wake = asyncio.Event()
        self._framer = MpegFramer()
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
            self.registry.release(self.mount)
            await self._close_recording(reason)
            if not self.transport.is_closing():
                if self.final_reply and reason in ("eof", "limit_duration", "limit_size"):
                    self.transport.write(self.final_reply)
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
                if not await self.ingest.write(data):
                    return self.ingest.limit_reason or "limit_size"
                continue
            if self._ending is not None:
                if self._ending == "eof":
                    self.mount.publish(self._framer.flush())
                return self._ending
            self._wake.clear()
            await self._wake.wait()

    async def _close_recording(self, reason: str) -> None:
        try:
            if reason in ("eof", "limit_duration", "limit_size"):
                self.result = await self.ingest.finish(reason)
            else:
                self.result = await self.ingest.abort(reason)
        except REFUSALS as exc:
            log.warning("recording not closed yet; the recorder keeps trying",
                        extra={"recording_id": self.ingest.id, "error": repr(exc)})  # fmt: skip
