"""The load generator of ``audio_stream_load.py``: N simulated mod_audio_stream modules on one 20 ms clock.

Each session is its own TCP connection that opens with its module's handshake, byte for byte as the
reference gives it (voipbit: libwebsockets' request with ``Sec-WebSocket-Protocol:
audio.freeswitch.org``; binary: libwsc's ``Name:value`` headers, no subprotocol, no deflate offered),
then sends what the module sends: voipbit a tab-indented ``start`` and one ``media`` text frame per
20 ms (base64 L16, ``sequenceNumber``, ``chunk`` and ``timestamp`` on the media clock), binary one
320-byte s16le frame per 20 ms. Client frames are masked as RFC 6455 asks, a fresh random key per frame.

Why not a WebSocket client per session: a client library costs Python objects and calls per frame,
and at 1000 sessions that made the generator 0.6 of a core and 20-33 ms late at p95, the bottleneck
it must not be. Here a tick's frames for every session are built at once in one numpy array (the
template, each session's ``stream_id`` written in, XORed with the masks) and written with one
``socket.send`` each, in one pass. A socket that cannot take a whole frame keeps the rest queued and
sends it, and what the following ticks add, when writable (as the module's FIFO does after a stall).
Server frames are read only when some come: a PING is answered, a CLOSE echoed.

``PicowsFleet`` is the former generator (one picows client per session), kept for comparison.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import os
import socket
import struct
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

import numpy as np
from picows import WSCloseCode, WSListener, WSMsgType, WSTransport, ws_connect

from media_mgr.audio_stream.capture.clock import Chunk, TrackClock
from media_mgr.audio_stream.capture.jitter import InterarrivalJitter

TICK = 0.020
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
EPOCH_MS = 1_700_000_000_000  # the media clock's start, as voipbit's ``timestamp`` counts it


def pcm_frame() -> bytes:
    """20 ms of 8 kHz s16le noise: what both dialects carry."""
    return (np.random.default_rng(1).standard_normal(160) * 2000).astype("<i2").tobytes()


def frame_header(opcode: int, size: int, mask: bytes) -> bytes:
    """A client frame's header (FIN set, masked) for a payload of ``size`` bytes."""
    if size < 126:
        return bytes((0x80 | opcode, 0x80 | size)) + mask
    if size < 1 << 16:
        return bytes((0x80 | opcode, 0x80 | 126)) + struct.pack("!H", size) + mask
    return bytes((0x80 | opcode, 0x80 | 127)) + struct.pack("!Q", size) + mask


def masked(opcode: int, payload: bytes) -> bytes:
    """One client frame, masked with a fresh key."""
    mask = os.urandom(4)
    keys = np.frombuffer((mask * (len(payload) // 4 + 1))[: len(payload)], np.uint8)
    body = np.frombuffer(payload, np.uint8) ^ keys
    return frame_header(opcode, len(payload), mask) + body.tobytes()


def handshake(dialect: str, host: str, port: int, target: str, key: str) -> bytes:
    """The upgrade request as the module writes it (reference A1.2 for voipbit, B2 for libwsc)."""
    if dialect == "voipbit":
        lines = [f"GET {target} HTTP/1.1", "Pragma: no-cache", "Cache-Control: no-cache", f"Host: {host}",
                 f"Origin: http://{host}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Protocol: audio.freeswitch.org",
                 "Sec-WebSocket-Version: 13"]  # fmt: skip
    else:
        lines = [f"GET {target} HTTP/1.1", f"Host:{host}:{port}", "Upgrade:websocket", "Connection:upgrade",
                 f"Sec-WebSocket-Key:{key}", "Sec-WebSocket-Version:13", f"Origin:http://{host}:{port}"]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class _Peer:
    """One module's socket: what is waiting to be written, what the server sent not parsed yet."""

    __slots__ = ("alive", "closing", "i", "inbox", "out", "sock")

    def __init__(self, i: int, sock: socket.socket) -> None:
        self.i = i
        self.sock = sock
        # Queued while the socket could not take it, in pieces: a bytearray cut from the front and
        # appended to is copied whole on nearly every append, which at 1000 backed-up sockets made
        # the generator itself seconds late.
        self.out: deque[bytes | memoryview] = deque()
        self.inbox = bytearray()
        self.alive = True
        self.closing = False

    def queue(self, data: memoryview | bytes) -> int:
        """In place of ``sock.send`` while something waits: after it, in order."""
        self.out.append(bytes(data))
        return len(data)

    def drop(self, data: memoryview | bytes) -> int:
        """In place of ``sock.send`` once the socket is gone."""
        return len(data)

    def flush(self) -> bool:
        """As much of what waits as the socket takes, without copying it; True when all went."""
        out = self.out
        n = self.sock.sendmsg(list(itertools.islice(out, 512)))
        while n:
            first = out[0]
            if len(first) <= n:
                n -= len(first)
                out.popleft()
            else:
                out[0], n = memoryview(first)[n:], 0
        return not out


class Fleet:
    """N module connections on raw sockets, every frame of a tick built in one array and sent in one pass."""

    def __init__(self, base: str, dialect: str) -> None:
        url = urlsplit(base)
        self.host, self.port, self.path = url.hostname or "127.0.0.1", url.port or 80, url.path
        self.dialect = dialect
        self.peers: list[_Peer] = []
        self.chunk = 0
        self.pcm = pcm_frame()
        self.b64 = base64.b64encode(self.pcm)
        self.late: list[float] = []  # per tick: how far behind schedule its last frame went out
        self.passes: list[tuple[float, float]] = []  # per tick since the start: its pass began, ended
        self.sent = 0  # frames
        self._ids = np.zeros((0, 0), np.uint8)  # per session, its stream_id, all of one width
        self._sends: list[Callable[[memoryview | bytes], int]] = []  # per session: where its frame goes

    def _stream_id(self, i: int) -> str:
        return f"s{i:06d}"  # one width for all: a tick's frames are rows of one array

    async def add(self, n: int) -> None:
        start, end = len(self.peers), len(self.peers) + n
        for first in range(start, end, 50):
            self.peers += await asyncio.gather(
                *(self._connect(i) for i in range(first, min(first + 50, end)))
            )
        self._sends = [p.sock.send for p in self.peers]
        ids = b"".join(self._stream_id(i).encode() for i in range(end))
        self._ids = np.frombuffer(ids, np.uint8).reshape(end, -1)

    async def _connect(self, i: int) -> _Peer:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as both modules' clients
        await loop.sock_connect(sock, (self.host, self.port))
        key = base64.b64encode(os.urandom(16)).decode()
        target = f"{self.path}/v{i}" if self.dialect == "voipbit" else f"{self.path}/b{i}?rate=8000"
        await loop.sock_sendall(sock, handshake(self.dialect, self.host, self.port, target, key))
        answer = bytearray()
        while b"\r\n\r\n" not in answer:
            got = await asyncio.wait_for(loop.sock_recv(sock, 4096), 30)
            if not got:
                raise ConnectionError(f"session {i}: the server closed during the handshake")
            answer += got
        head, _, rest = bytes(answer).partition(b"\r\n\r\n")
        status, *fields = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
        expected = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        if status.split()[1:2] != ["101"] or headers.get("sec-websocket-accept") != expected:
            raise ConnectionError(f"session {i}: upgrade refused: {status}")
        if headers.get("sec-websocket-protocol", "audio.freeswitch.org") != "audio.freeswitch.org":
            raise ConnectionError(f"session {i}: a subprotocol that was not offered")  # lws fails it too
        peer = _Peer(i, sock)
        peer.inbox += rest
        loop.add_reader(sock.fileno(), self._read, peer)
        if self.dialect == "voipbit":
            start = {"sequenceNumber": 0, "event": "start", "start": {
                "callId": f"call-{i}", "stream_id": self._stream_id(i), "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 8000}}}  # fmt: skip
            text = json.dumps(start, indent="\t", separators=(",", ":\t")).encode()  # cJSON's print
            await loop.sock_sendall(sock, masked(0x1, text))
        return peer

    def _template(self) -> tuple[bytes, int]:
        """This tick's payload with the ``stream_id`` left as spaces, and where it starts."""
        c = self.chunk
        if self.dialect != "voipbit":
            return self.pcm, 0
        head = f'{{\n\t"sequenceNumber":\t{c},\n\t"stream_id":\t"'.encode()
        tail = (f'",\n\t"event":\t"media",\n\t"media":\t{{\n\t\t"track":\t"inbound",\n\t\t"timestamp":\t'
                f'"{EPOCH_MS + 20 * c}",\n\t\t"chunk":\t{c},\n\t\t"payload":\t"').encode()  # fmt: skip
        return head + b" " * self._ids.shape[1] + tail + self.b64 + b'"\n\t}\n}', len(head)

    def build(self) -> bytes:
        """Every session's frame of this tick, masked, one after the other (all of one length)."""
        payload, at = self._template()
        n, size = len(self.peers), len(payload)
        header = frame_header(0x1 if self.dialect == "voipbit" else 0x2, size, b"\0\0\0\0")
        h = len(header)
        frames = np.empty((n, h + size), np.uint8)
        frames[:, :h] = np.frombuffer(header, np.uint8)
        masks = np.frombuffer(os.urandom(4 * n), np.uint8).reshape(n, 4)
        frames[:, h - 4 : h] = masks
        body = frames[:, h:]
        body[:] = np.frombuffer(payload, np.uint8)
        if self.dialect == "voipbit":
            body[:, at : at + self._ids.shape[1]] = self._ids[:n]
        body ^= np.tile(masks, (1, size // 4 + 1))[:, :size]
        return frames.tobytes()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        k = 0
        while True:
            k += 1
            self.chunk += 1
            data = memoryview(self.build())  # before the deadline: the clock is not kept waiting
            deadline = t0 + k * TICK
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            began = loop.time()
            size = len(data) // max(1, len(self.peers))
            sends, at = self._sends, 0
            for i, send in enumerate(sends):
                try:
                    n = send(data[at : at + size])  # the socket's own send, or a queue's append
                except BlockingIOError:
                    n = 0
                except OSError:
                    n = size
                    self._gone(self.peers[i])
                if n != size:
                    self._queue(i, data[at + n : at + size])
                at += size
            ended = loop.time()
            self.late.append(ended - deadline)
            self.passes.append((began, ended))
            self.sent += len(sends)

    def _queue(self, i: int, rest: memoryview | bytes) -> None:
        """The socket took part of a frame: the rest, and what follows, waits until it is writable."""
        peer = self.peers[i]
        peer.queue(rest)
        self._sends[i] = peer.queue
        asyncio.get_running_loop().add_writer(peer.sock.fileno(), self._flush, i)

    def _flush(self, i: int) -> None:
        peer = self.peers[i]
        try:
            done = peer.flush()
        except BlockingIOError:
            return
        except OSError:
            return self._gone(peer)
        if done:
            asyncio.get_running_loop().remove_writer(peer.sock.fileno())
            self._sends[i] = peer.sock.send

    def _read(self, peer: _Peer) -> None:
        """What the server sent: a PING answered with its PONG, a CLOSE echoed, the rest dropped."""
        try:
            got = peer.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            got = b""
        if not got:
            return self._gone(peer)
        buf = peer.inbox
        buf += got
        while len(buf) >= 2:
            opcode, size, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if size == 126:
                size, at = (struct.unpack_from("!H", buf, 2)[0], 4) if len(buf) >= 4 else (-1, 0)
            elif size == 127:
                size, at = (struct.unpack_from("!Q", buf, 2)[0], 10) if len(buf) >= 10 else (-1, 0)
            if size < 0 or len(buf) < at + size:
                return
            payload = bytes(buf[at : at + size])
            del buf[: at + size]
            if opcode == 0x9:
                self._reply(peer, masked(0xA, payload))
            elif opcode == 0x8 and not peer.closing:
                peer.closing = True
                self._reply(peer, masked(0x8, payload[:2]))

    def _reply(self, peer: _Peer, frame: bytes) -> None:
        """After the audio queued before it, if any (the module's FIFO keeps its order)."""
        i = peer.i
        n = self._sends[i](frame)
        if n != len(frame):
            self._queue(i, frame[n:])

    def _gone(self, peer: _Peer) -> None:
        if peer.alive:
            peer.alive = False
            self._sends[peer.i] = peer.drop
            loop = asyncio.get_running_loop()
            loop.remove_reader(peer.sock.fileno())
            loop.remove_writer(peer.sock.fileno())
            peer.out.clear()

    def close(self) -> None:
        for peer in self.peers:
            if peer.alive and not peer.closing:
                peer.closing = True
                with contextlib.suppress(OSError):
                    peer.sock.send(masked(0x8, struct.pack("!H", 1000)))
            self._gone(peer)
            peer.sock.close()


def implied_gaps(passes: list[tuple[float, float]], at: float) -> int:
    """Gaps the server would rightly infer from the generator's own timing alone: one session's
    frames (the one ``at`` of the way through each pass, 0 first, 1 last) arriving exactly when they
    went out, through the server's own ``TrackClock`` at its default settings. Not 0: the generator
    ran late at about real-time pace long enough to look like a gap, so the server's gaps are its."""
    clock = TrackClock(8000, 2, quantum=160)
    pcm = bytes(320)
    for k, (began, ended) in enumerate(passes):
        clock.feed(Chunk(160 * k, pcm, began + at * (ended - began)))
    return clock.gaps


def implied_jitter(passes: list[tuple[float, float]], at: float, since: float) -> float:
    """The RFC 3550 jitter the server would measure from the generator's own timing alone, for the
    session ``at`` of the way through each pass (as ``implied_gaps``): J through the server's own
    estimator, its 95th percentile over the passes that began at ``since`` or later, in ms. Part of
    the server's jitter figure is this, the generator's; the rest is the server's."""
    jitter = InterarrivalJitter()
    seen = []
    for k, (began, ended) in enumerate(passes):
        sent = began + at * (ended - began)
        value = jitter.update(sent, 0.02 * k)
        if began >= since:
            seen.append(value)
    return float(np.percentile(seen, 95)) * 1000 if seen else 0.0


class PicowsFleet:
    """The former generator: one picows client per session (``--generator picows``), for comparison."""

    def __init__(self, base: str, dialect: str) -> None:
        self.base = base
        self.dialect = dialect
        self.transports: list[WSTransport] = []
        self.stream_ids: list[bytes] = []
        self.chunk = 0
        self.frame = pcm_frame()
        self.b64 = base64.b64encode(self.frame).decode()
        self.late: list[float] = []
        self.sent = 0

    async def add(self, n: int) -> None:
        start, end = len(self.transports), len(self.transports) + n
        for first in range(start, end, 50):
            self.transports += await asyncio.gather(
                *(self._connect(i) for i in range(first, min(first + 50, end)))
            )
            self.stream_ids += [f"s{i}".encode() for i in range(first, min(first + 50, end))]

    async def _connect(self, i: int) -> WSTransport:
        if self.dialect == "voipbit":
            transport, _ = await ws_connect(WSListener, f"{self.base}/v{i}", websocket_handshake_timeout=30,
                                            extra_headers={"Sec-WebSocket-Protocol": "audio.freeswitch.org"})  # fmt: skip
            start = {"sequenceNumber": 0, "event": "start", "start": {
                "callId": f"call-{i}", "stream_id": f"s{i}", "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 8000}}}  # fmt: skip
            transport.send(WSMsgType.TEXT, json.dumps(start, indent="\t").encode())
        else:
            transport, _ = await ws_connect(
                WSListener, f"{self.base}/b{i}?rate=8000", websocket_handshake_timeout=30
            )
        return transport

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        k = 0
        while True:
            k += 1
            self.chunk += 1
            deadline = t0 + k * TICK
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            c = self.chunk
            if self.dialect == "voipbit":
                head = f'{{\n\t"sequenceNumber":\t{c},\n\t"stream_id":\t"'.encode()
                tail = (f'",\n\t"event":\t"media",\n\t"media":\t{{\n\t\t"track":\t"inbound",\n\t\t"timestamp":\t'
                        f'"{EPOCH_MS + 20 * c}",\n\t\t"chunk":\t{c},\n\t\t"payload":\t"{self.b64}"\n\t}}\n}}').encode()  # fmt: skip
                for t, sid in zip(self.transports, self.stream_ids, strict=True):
                    t.send(WSMsgType.TEXT, head + sid + tail)
            else:
                for t in self.transports:
                    t.send(WSMsgType.BINARY, self.frame)
            self.late.append(loop.time() - deadline)
            self.sent += len(self.transports)

    def close(self) -> None:
        for t in self.transports:
            t.send_close(WSCloseCode.OK)
            t.disconnect()
