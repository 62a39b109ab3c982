"""A faithful fake of FreeSWITCH's mod_audio_stream, frame for frame (reference Part G).

``VoipbitModule`` is voipbit/mod_audio_stream (G1, G2): ``start`` first, then one ``media`` per
track per 20 ms tick paced on a monotonic clock (tick k at t0 + 20 ms * k), ``both`` as two mono
tracks, outbound first; a pause skips ticks without advancing ``chunk``/``timestamp``; a stall
queues messages and sends them back to back; a reconnect drops the socket, waits, and continues with
``media`` only, keeping every counter. In bidirectional mode it plays ``media.play`` audio one
frame per tick from an unbounded buffer, acknowledges checkpoints (``playedStream``) and
``media.clear`` (``media.cleared``), and sends ``incorrectPayload`` once.

``BinaryModule`` is amigniter's libwsc build (G3): frames captured during the handshake first,
then the metadata text, then one binary s16le frame per tick (stereo interleaved, caller left).

Both record what the server should have stored: ``expected(track)`` is the call's audio on the call's
own clock, zeros where the module dropped it (pause, reconnect).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

TICK = 0.020
_B64 = re.compile(rb"[A-Za-z0-9+/]*")


@dataclass(frozen=True)
class Talk:
    seconds: float


@dataclass(frozen=True)
class Pause:
    """``uuid_audio_stream ... pause``: capture stops; nothing is sent, the media clock stands still."""

    seconds: float


@dataclass(frozen=True)
class Stall:
    """The socket is not writable: chunks pile up and go out back to back afterwards."""

    seconds: float


@dataclass(frozen=True)
class Reconnect:
    """The TCP connection drops; the module reconnects ``down`` seconds later (lws: after 1 s)."""

    down: float = 1.0


@dataclass(frozen=True)
class SendText:
    text: str


Step = Talk | Pause | Stall | Reconnect | SendText


def ulaw_decode(data: bytes) -> np.ndarray:
    """G.711 mu-law -> int16 (the standard expansion)."""
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    sign, exponent, mantissa = u & 0x80, (u >> 4) & 0x07, u & 0x0F
    magnitude = ((mantissa << 3) + 0x84) << exponent
    return np.where(sign != 0, 0x84 - magnitude, magnitude - 0x84).astype(np.int16)


def ulaw_encode(samples: np.ndarray) -> bytes:
    x = samples.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    coded: np.ndarray = (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)
    return coded.tobytes()


def resample(pcm: np.ndarray, src: int, dst: int) -> np.ndarray:
    if src == dst or not len(pcm):
        return pcm
    n = len(pcm) * dst // src
    out: np.ndarray = np.interp(np.arange(n) * src / dst, np.arange(len(pcm)), pcm).astype(np.int16)
    return out


class _Module:
    """What both modules share: the tick clock and the record of what was captured."""

    def __init__(self, url: str, rate: int, sources: dict[str, np.ndarray]) -> None:
        self.url = url
        self.rate = rate
        self.frame = rate // 50
        self.sources = sources
        self.captured: dict[str, list[tuple[int, np.ndarray]]] = {t: [] for t in sources}
        self.tick = 0  # call time, in ticks since the stream started
        self.t0 = 0.0
        self.ws: ClientConnection | None = None
        self.received: list[tuple[float, str | bytes]] = []

    def _chunk(self, track: str) -> np.ndarray:
        src = self.sources[track]
        start = self.tick * self.frame
        piece = src[start : start + self.frame]
        if len(piece) < self.frame:
            piece = np.concatenate([piece, np.zeros(self.frame - len(piece), dtype=np.int16)])
        self.captured[track].append((start, piece))
        return piece

    def expected(self, track: str) -> np.ndarray:
        """The call's audio where it was captured, zeros where it was dropped; as long as the call."""
        if not self.captured[track]:
            return np.zeros(0, dtype=np.int16)
        end = max(start + len(p) for start, p in self.captured[track])
        out = np.zeros(end, dtype=np.int16)
        for start, piece in self.captured[track]:
            out[start : start + len(piece)] = piece
        return out

    async def _sleep_to_tick(self) -> None:
        await asyncio.sleep(max(0.0, self.t0 + self.tick * TICK - time.monotonic()))

    def _tick_now(self) -> int:
        return int(np.ceil((time.monotonic() - self.t0) / TICK))


class VoipbitModule(_Module):
    def __init__(
        self,
        url: str,
        sources: dict[str, np.ndarray],
        *,
        rate: int = 8000,
        encoding: str = "l16",
        stream_id: str = "sim-stream",
        metadata: str | None = None,
        bidirectional: bool = False,
        channel_rate: int = 8000,
        basic_auth: tuple[str, str] | None = None,
        subprotocol: str | None = "audio.freeswitch.org",
    ) -> None:
        super().__init__(url, rate, sources)
        self.tracks = ["outbound", "inbound"] if len(sources) == 2 else list(sources)
        self.encoding = encoding
        self.stream_id = stream_id
        self.call_id = str(uuid.uuid4())
        self.metadata = metadata
        self.bidirectional = bidirectional
        self.channel_rate = channel_rate
        self.basic_auth = basic_auth
        self.subprotocol = subprotocol
        self.seq = 0
        self.chunks = dict.fromkeys(self.tracks, 0)
        self.t_buf_us = time.time_ns() // 1000  # buffer creation: the API start, before connecting
        self.stalled: list[str] = []
        self.connected = False
        self._receiver: asyncio.Task[None] | None = None
        # playout (G2)
        self.fl = 2 * channel_rate // 50
        self.buf = bytearray()
        self.recv_bytes = 0
        self.played_bytes = 0
        self.played = bytearray()
        self.checkpoints: deque[tuple[str, int]] = deque()
        self.notified = False
        self.acks: list[tuple[float, str]] = []
        self.cleared_at: list[float] = []
        self.levels: list[int] = []  # bytes buffered after each playout tick
        self.underruns = 0
        self.plays = 0
        self.binary_drops = 0

    # -- connection ----------------------------------------------------------------------------------

    async def connect(self) -> None:
        host = urlsplit(self.url).hostname or ""
        headers = [("Pragma", "no-cache"), ("Cache-Control", "no-cache")]
        if self.basic_auth:
            token = base64.b64encode(":".join(self.basic_auth).encode()).decode()
            headers.append(("Authorization", f"Basic {token}"))
        self.ws = await connect(
            self.url, subprotocols=[self.subprotocol] if self.subprotocol else None,  # type: ignore[list-item]
            origin=f"http://{host}", compression=None, user_agent_header=None,  # type: ignore[arg-type]
            additional_headers=headers, open_timeout=10, ping_interval=None,
        )  # fmt: skip
        if self.ws.subprotocol not in (None, self.subprotocol):
            raise AssertionError(f"the server chose a subprotocol we did not offer: {self.ws.subprotocol}")
        self.connected = True
        self._receiver = asyncio.create_task(self._receive(self.ws))

    async def start(self) -> None:
        """Connect and send ``start`` at once, without waiting for audio (A2.1)."""
        await self.connect()
        start: dict[str, Any] = {
            "sequenceNumber": 0,
            "event": "start",
            "start": {
                "callId": self.call_id,
                "stream_id": self.stream_id,
                "tracks": ["inbound", "outbound"] if len(self.tracks) == 2 else self.tracks,
                "mediaFormat": {"encoding": f"audio/x-{'mulaw' if self.encoding == 'mulaw' else 'l16'}",
                                "sampleRate": self.rate},
            },
        }  # fmt: skip
        if self.metadata is not None:
            start["extra_headers"] = self.metadata
        await self._send(json.dumps(start, indent="\t"))
        self.t0 = time.monotonic()
        self.tick = 0

    async def continue_without_start(self) -> None:
        """A reconnect that reaches a server which never saw this stream: media, no start (A1.8)."""
        await self.connect()
        self.t0 = time.monotonic()
        self.tick = 0

    async def _send(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send(text)

    # -- the script ----------------------------------------------------------------------------------

    async def run(self, *steps: Step) -> None:
        for step in steps:
            match step:
                case Talk(seconds=s):
                    await self._ticks(s, capture=True)
                case Pause(seconds=s):
                    await self._ticks(s, capture=False)
                case Stall(seconds=s):
                    await self._ticks(s, capture=True, hold=True)
                    for message in self.stalled:  # the burst
                        await self._send(message)
                    self.stalled.clear()
                case Reconnect(down=down):
                    await self._drop()
                    await self._ticks(down, capture=False)
                    await self.connect()
                    self.tick = self._tick_now()  # what elapsed while connecting was dropped too
                case SendText(text=text):
                    await self._send(text)

    async def _ticks(self, seconds: float, *, capture: bool, hold: bool = False) -> None:
        for _ in range(round(seconds / TICK)):
            await self._sleep_to_tick()
            if capture and self.connected:
                for track in self.tracks:  # both: outbound first, then inbound (A3)
                    message = self._media(track)
                    if hold:
                        self.stalled.append(message)
                    else:
                        await self._send(message)
            await self._playout_tick()
            self.tick += 1

    def _media(self, track: str) -> str:
        pcm = self._chunk(track)
        payload = ulaw_encode(pcm) if self.encoding == "mulaw" else pcm.astype("<i2").tobytes()
        self.seq += 1
        self.chunks[track] += 1
        media = {
            "sequenceNumber": self.seq,
            "stream_id": self.stream_id,
            "event": "media",
            "media": {
                "track": track,
                "timestamp": str((self.t_buf_us + 20000 * self.chunks[track]) // 1000),
                "chunk": self.chunks[track],
                "payload": base64.b64encode(payload).decode(),
            },
        }
        if self.metadata is not None:
            media["extra_headers"] = self.metadata
        return json.dumps(media, indent="\t")

    async def hangup(self) -> None:
        """API stop or channel hangup: close 1000 with no reason and no ``stop`` (A8)."""
        if self.ws is not None:
            await self.ws.close(1000)
            await self._end_receiver()

    async def graceful(self) -> None:
        """graceful-shutdown / timeout: held messages, then ``stop``, then close 1000."""
        for message in self.stalled:
            await self._send(message)
        self.stalled.clear()
        self.seq += 1
        await self._send(json.dumps({"sequenceNumber": self.seq, "stream_id": self.stream_id, "event": "stop",
                                     "stop": {"callId": self.call_id}}, indent="\t"))  # fmt: skip
        await self.hangup()

    async def _drop(self) -> None:
        """An abrupt TCP loss: no close frame (the server sees 1006)."""
        if self.ws is not None:
            self.ws.transport.abort()
            await self._end_receiver()
        self.connected = False

    async def _end_receiver(self) -> None:
        if self._receiver is not None:
            try:
                await asyncio.wait_for(self._receiver, 5)
            except (TimeoutError, asyncio.CancelledError):
                self._receiver.cancel()
            self._receiver = None

    # -- bidirectional (G2) --------------------------------------------------------------------------

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                now = time.monotonic()
                self.received.append((now, message))
                if isinstance(message, bytes):
                    self.binary_drops += 1  # always discarded (A4.0)
                    continue
                if self.bidirectional:
                    await self._server_text(message, now)
        except Exception:  # the socket went; reconnect handles it
            return

    async def _server_text(self, text: str, now: float) -> None:
        try:
            obj = json.loads(text)
        except ValueError:
            return await self._incorrect(text)
        event = obj.get("event") if isinstance(obj, dict) else None
        if event == "media.play":
            media = obj.get("media")
            if not isinstance(media, dict) or not isinstance(media.get("payload"), str) or not isinstance(
                    media.get("contentType"), str) or not isinstance(media.get("sampleRate"), int):  # fmt: skip
                return await self._incorrect(text)
            rate = media["sampleRate"] if media["sampleRate"] in (8000, 16000) else 8000
            raw = media["payload"].encode()
            raw = raw[: _B64.match(raw).end()]  # type: ignore[union-attr]  # stops at "=" and the like
            if len(raw) % 4 == 1:
                raw = raw[:-1]
            try:
                data = binascii.a2b_base64(raw + b"=" * (-len(raw) % 4))
            except binascii.Error:
                return await self._incorrect(text)
            if media["contentType"] == "audio/x-mulaw":
                pcm = ulaw_decode(data)
            elif media["contentType"] in ("audio/x-l16", "raw", "wav"):
                pcm = resample(np.frombuffer(data[: len(data) & ~1], dtype="<i2"), rate, self.channel_rate)
            else:
                return await self._incorrect(text)
            self.buf += pcm.astype("<i2").tobytes()
            self.recv_bytes += 2 * len(pcm)
            self.plays += 1
        elif event == "media.checkpoint":
            name = obj.get("name")
            if isinstance(name, str) and self.recv_bytes:
                self.checkpoints.append((name, self.recv_bytes))
        elif event == "media.clear":
            self.buf.clear()
            self.checkpoints.clear()
            self.played_bytes = self.recv_bytes = 0
            self.cleared_at.append(now)
            await self._send(json.dumps({"sequenceNumber": self.seq, "streamId": self.stream_id,
                                         "event": "media.cleared"}, separators=(",", ":")))  # fmt: skip
            self.seq += 1
        elif event == "transcription.send":
            pass
        else:
            await self._incorrect(text)

    async def _incorrect(self, text: str) -> None:
        if self.notified:
            return
        self.notified = True
        await self._send(json.dumps({"event": "incorrectPayload", "stream_id": self.stream_id, "payload": text,
                                     "sequenceNumber": self.seq}, indent="\t"))  # fmt: skip
        self.seq += 1

    async def _playout_tick(self) -> None:
        if not self.bidirectional:
            return
        if len(self.buf) < self.fl:
            if self.buf or self.checkpoints:
                self.underruns += 1  # audio is owed but a whole frame is not there
            self.levels.append(len(self.buf))
            return
        self.played += self.buf[: self.fl]
        del self.buf[: self.fl]
        self.played_bytes += self.fl
        self.levels.append(len(self.buf))
        while self.checkpoints and self.played_bytes + self.fl - 1 >= self.checkpoints[0][1]:
            name, _ = self.checkpoints.popleft()
            self.acks.append((time.monotonic(), name))
            await self._send(json.dumps({"event": "playedStream", "sequenceNumber": self.seq,
                                         "stream_id": self.stream_id, "name": name}, indent="\t"))  # fmt: skip
            self.seq += 1

    async def idle(self, seconds: float) -> None:
        """Ticks with nothing captured (an inbound track whose caller is silent still ticks)."""
        await self._ticks(seconds, capture=False)


class BinaryModule(_Module):
    """amigniter/mod_audio_stream, libwsc build (G3)."""

    def __init__(
        self,
        url: str,
        sources: dict[str, np.ndarray],
        *,
        rate: int = 8000,
        metadata: str | None = None,
        early_frames: int = 0,
        compression: str | None = None,
        extra_headers: list[tuple[str, str]] | None = None,
        subprotocol: str | None = None,
    ) -> None:
        super().__init__(url, rate, sources)
        self.metadata = metadata
        self.early_frames = early_frames
        self.compression = compression
        self.extra_headers = list(extra_headers or [])
        self.subprotocol = subprotocol

    def _frame(self) -> bytes:
        if len(self.sources) == 1:
            return self._chunk(next(iter(self.sources))).astype("<i2").tobytes()
        left, right = self._chunk("inbound"), self._chunk("outbound")
        out = np.empty(2 * self.frame, dtype="<i2")
        out[0::2], out[1::2] = left, right
        return out.tobytes()

    async def run(self, seconds: float, *, stop_text: str | None = None) -> None:
        parts = urlsplit(self.url)
        self.t0 = time.monotonic()
        early = []
        for _ in range(self.early_frames):  # captured while CONNECTING (B3)
            early.append(self._frame())
            self.tick += 1
        self.ws = await connect(
            self.url, subprotocols=[self.subprotocol] if self.subprotocol else None,  # type: ignore[list-item]
            origin=f"http://{parts.hostname}:{parts.port}", compression=self.compression,  # type: ignore[arg-type]
            user_agent_header=None, additional_headers=self.extra_headers, open_timeout=1, ping_interval=None,
        )  # fmt: skip
        self.t0 = time.monotonic() - self.tick * TICK
        for frame in early:
            await self.ws.send(frame)
        if self.metadata is not None:
            await self.ws.send(self.metadata)
        for _ in range(round(seconds / TICK)):
            await self._sleep_to_tick()
            await self.ws.send(self._frame())
            self.tick += 1
        if stop_text is not None:
            await self.ws.send(stop_text)
        await self.ws.close(1000, "Normal closure")
