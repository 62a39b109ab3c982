"""One SHOUT-port connection: READ_HEAD -> AUTH -> STREAMING (a source) or LISTENING -> CLOSED.

What libshout 2.4.6, ffmpeg's ``icecast://`` and ezstream need (reference sections 3.5-3.9):
``OPTIONS *`` gets 204 with ``Allow: GET, PUT, OPTIONS, SOURCE`` (never 404/501: libshout would
fail with "Login failed"); a SOURCE/PUT without credentials gets 401 with a Basic challenge (and
the same ``Allow``, so libshout switches to PUT); with credentials, PUT + ``Expect: 100-continue``
gets ``HTTP/1.1 100 Continue`` as soon as the source is accepted (libshout stalls 4 s otherwise),
SOURCE gets ``HTTP/1.0 200 OK``; the body is raw MP3 until EOF. A GET on a live mount makes a
listener. Every request gets an answer; a head that is too large, not HTTP or too slow (slow
loris: one deadline for the whole head, not per byte) gets an error status, then a close.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from typing import cast

from media_mgr.errors import Forbidden, MediaMgrError, Unavailable, UnsupportedMedia
from media_mgr.live.cursor import ListenerCursor
from media_mgr.live.mount import Mount
from media_mgr.live.registry import MountInUse, check_mount
from media_mgr.recording.ingest import Ingest, RecordingEnded
from media_mgr.shout.auth import SourceGrant
from media_mgr.shout.host import ShoutHost
from media_mgr.shout.parser import HeadError, HeadParser, ShoutRequest
from media_mgr.shout.source import SourceSession

log = logging.getLogger("media_mgr.shout")

ALLOW = "GET, PUT, OPTIONS, SOURCE"
MP3_TYPES = frozenset({"", "audio/mpeg", "audio/mp3", "audio/x-mpeg", "application/octet-stream"})
MAX_LISTENER_INPUT = 64 * 1024  # a listener has nothing to say; past this it is closed
REASONS = {100: "Continue", 200: "OK", 204: "No Content", 400: "Bad Request", 401: "Authentication Required",
           403: "Forbidden", 404: "File Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
           413: "Payload Too Large", 415: "Unsupported Media Type", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 503: "Service Unavailable"}  # fmt: skip


class State(enum.Enum):
    READ_HEAD = "read_head"
    AUTH = "auth"
    STREAMING = "streaming"
    LISTENING = "listening"
    CLOSED = "closed"


_NEXT = {
    State.READ_HEAD: {State.AUTH, State.LISTENING, State.CLOSED},
    State.AUTH: {State.STREAMING, State.CLOSED},
    State.STREAMING: {State.CLOSED},
    State.LISTENING: {State.CLOSED},
    State.CLOSED: set(),
}


def _nowhere(data: bytes) -> None:
    raise RuntimeError("not a listener: nothing is sent to this connection")


def _clean(value: str) -> str:
    return "".join(c for c in value if c.isprintable())[:200]


class ShoutProtocol(asyncio.Protocol):
    def __init__(self, host: ShoutHost) -> None:
        self.host = host
        self.state = State.READ_HEAD
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self._parser = HeadParser(host.config.max_head_bytes)
        self._timer: asyncio.TimerHandle | None = None
        self._early = bytearray()  # body bytes that came with the head, before the source is accepted
        self._early_eof = False
        self._source: SourceSession | None = None
        self._mount: Mount | None = None
        self._cursor: ListenerCursor | None = None
        self._writing_paused = False
        self._sendable = False  # a listener whose transport takes bytes now: Sink.ready(), on the hot path
        self._write: Callable[[bytes], None] = _nowhere
        self._ignored = 0

    def _to(self, new: State) -> None:
        if new not in _NEXT[self.state]:
            raise RuntimeError(f"illegal SHOUT connection transition {self.state.name} -> {new.name}")
        self.state = new

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio subclasses
        peer = self.transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else ""
        if not self.host.opened(self):  # full: 503 with Retry-After (the error table's), then close
            self._refuse(Unavailable("too many connections; try again"), "1.0")
            return
        self._arm(self.host.config.head_timeout, self._head_timeout)

    def data_received(self, data: bytes) -> None:
        if self.state is State.READ_HEAD:
            try:
                request = self._parser.feed(data)
            except HeadError as exc:
                extra = {"peer": self.peer, "status": exc.status, "detail": exc.detail}
                log.info("bad request head", extra=extra)
                self._reply(exc.status, "1.0", body=f"{exc.detail}\r\n".encode())
                return
            if request is not None:
                self._disarm()
                self._dispatch(request, self._parser.rest)
        elif self.state is State.STREAMING:
            assert self._source is not None
            self._source.feed(data)
        elif self.state is State.AUTH:
            self._early += data
            if len(self._early) >= self.host.config.source_buffer_bytes and self.transport:
                self.transport.pause_reading()
        elif self.state is State.LISTENING:
            self._ignored += len(data)
            if self._ignored > MAX_LISTENER_INPUT:
                self._close()

    def eof_received(self) -> bool:
        if self.state is State.STREAMING and self._source is not None:
            self._source.end_of_stream()
            return True  # keep our side open for a final answer
        if self.state is State.AUTH:
            self._early_eof = True
            return True
        if self.state is State.LISTENING and self._mount is None:  # fleet hook: answer the lookup first
            self._early_eof = True
            return True
        if self.state is State.READ_HEAD:  # half a head, then nothing more: say so, then close
            if self._parser.started:  # (a bare connect-and-close, as a port probe does, is not news)
                log.info("incomplete request head", extra={"peer": self.peer})
            self._reply(400, "1.0", body=b"incomplete request head\r\n")
            return True
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_sending()
        self.host.closed(self)
        if self.state is State.READ_HEAD and self._parser.started:
            log.info("client left mid-head", extra={"peer": self.peer, "error": repr(exc) if exc else None})
        self._disarm()
        if self._source is not None:
            self._source.connection_lost(exc)
        if self._mount is not None and self._cursor is not None:
            self._mount.detach(self._cursor)
        if self.state is not State.CLOSED:
            self._to(State.CLOSED)

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._stop_sending()
        if self.state is State.LISTENING:
            self._arm(self.host.config.listener_timeout, self._listener_stalled)

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self.state is State.LISTENING and self._mount is not None and self._cursor is not None:
            self._sendable = self.transport is not None and not self.transport.is_closing()
            self._disarm()
            self._mount.pump(self._cursor)

    # -- the listener's Sink -----------------------------------------------------------------------

    def ready(self) -> bool:
        return self._sendable

    def _stop_sending(self) -> None:  # no more chunks from the mount, its direct writes included
        self._sendable = False
        if self._mount is not None and self._cursor is not None:
            self._mount.stalled(self._cursor)

    def send(self, data: bytes) -> None:
        self._write(data)  # catching up (pump); live chunks go to the transport's write directly

    def close(self, reason: str) -> None:
        if reason != "end":
            self.host.stats["listeners_dropped"] += 1
            log.info("listener dropped", extra={"peer": self.peer, "reason": reason})
            if self.transport is not None:
                self.transport.abort()  # what it has not read is of no use any more
        self._close()

    # -- requests ----------------------------------------------------------------------------------

    def _dispatch(self, request: ShoutRequest, rest: bytes) -> None:
        method, path = request.method, request.path
        if method == "OPTIONS":
            self._reply(204, request.version, {"Allow": ALLOW})
        elif method in ("GET", "HEAD") and path.startswith("/admin/"):
            self._admin(request)
        elif method in ("GET", "HEAD"):
            self._listen(request)
        elif method in ("SOURCE", "PUT"):
            self._source_request(request, rest)
        else:
            self._reply(405, request.version, {"Allow": ALLOW}, f"{method} is not served here\r\n".encode())

    def _admin(self, request: ShoutRequest) -> None:
        if request.path == "/admin/metadata":  # ezstream's title updates: accepted, not kept
            body = b"<?xml version=\"1.0\"?>\n<iceresponse><message>Metadata update successful</message>" \
                   b"<return>1</return></iceresponse>\n"  # fmt: skip
            self._reply(200, request.version, {"Content-Type": "text/xml"}, body)
        else:  # GET /admin/!POKE and the rest: Icecast's answer, which libshout treats as "go on"
            self._reply(400, request.version, body=b"400 - Unrecognised command\r\n")

    def _listen(self, request: ShoutRequest) -> None:
        mount = self.host.registry.get(request.path)
        if mount is None and self.host.elsewhere is not None:  # fleet hook: another instance's mount?
            self._to(State.LISTENING)  # (nothing is read meanwhile: a listener has nothing to say)
            self.host.spawn(self._listen_elsewhere(request), name=f"shout listener {request.path}")
            return
        self._listen_to(request, mount)

    async def _listen_elsewhere(self, request: ShoutRequest) -> None:
        assert self.host.elsewhere is not None
        mount = await self.host.elsewhere(request.path)
        if self.transport is not None and not self.transport.is_closing():
            self._listen_to(request, mount)
            if self._early_eof:  # the client half-closed meanwhile: what it was sent, then close
                self._close()

    def _listen_to(self, request: ShoutRequest, mount: Mount | None) -> None:
        if mount is None:
            self._reply(404, request.version, body=b"no source on this mount\r\n")
            return
        headers = {
            "Content-Type": mount.content_type,
            "Cache-Control": "no-cache, no-store",
            "Pragma": "no-cache",
            "icy-pub": "0",
            **{f"icy-{k[4:]}": _clean(v) for k, v in mount.info.items() if k in ("ice-name", "ice-url")},
        }
        if request.method == "HEAD":
            self._reply(200, "1.0", headers)
            return
        self._write_head(200, "1.0", {**headers, "Server": "media-mgr", "Connection": "close"})
        if self.state is not State.LISTENING:
            self._to(State.LISTENING)
        assert self.transport is not None
        self._write = self.transport.write
        self._sendable = not self._writing_paused
        self._mount = mount
        self._cursor = mount.attach(self, direct=self._write)
        self.host.stats["listeners_total"] += 1

    def _source_request(self, request: ShoutRequest, rest: bytes) -> None:
        try:
            check_mount(request.path)
            grant = self.host.auth.check(request.path, request.basic_auth)
            content_type = request.header("content-type").split(";")[0].strip().lower()
            if content_type not in MP3_TYPES:
                raise UnsupportedMedia(f"only MP3 sources are taken (audio/mpeg), not {content_type}")
        except MediaMgrError as exc:
            self._refuse(exc, request.version)
            return
        self._to(State.AUTH)
        self._early += rest
        self._arm(self.host.config.head_timeout, self._auth_timeout)
        self.host.spawn(self._start_source(request, grant), name=f"shout source {grant.mount}")

    async def _start_source(self, request: ShoutRequest, grant: SourceGrant) -> None:
        """Claim the mount, begin the recording, then stream; on any failure the mount is let go."""
        try:
            if self.host.taken_elsewhere is not None and await self.host.taken_elsewhere(grant.mount):
                raise MountInUse(f"mount {grant.mount} already has a source on another instance")
            mount = self.host.registry.claim(grant.mount)
        except MediaMgrError as exc:
            self._refuse(exc, request.version)
            return
        ingest: Ingest | None = None
        try:
            ingest = await self.host.begin(grant, self.peer)
            if self.state is State.AUTH and self.transport is not None and not self.transport.is_closing():
                self._stream(request, mount, ingest, reusable=grant.recording_id is not None)
        except MediaMgrError as exc:  # StoreUnavailable is one
            self._refuse(exc, request.version)
        except Exception:
            if self._source is not None and self._source.task is not None:
                self._source.stop("error")  # already streaming: its session closes the recording
            else:
                self._refuse(MediaMgrError("internal error"), request.version, status=500)
            raise  # logged, with its traceback, by the server's task set
        finally:
            if self._source is None or self._source.task is None:  # no session took them over
                self._source = None
                self.host.registry.release(mount)
                if ingest is not None:
                    await self.host.give_back(ingest)  # the client left while we checked, or we failed

    def _stream(self, request: ShoutRequest, mount: Mount, ingest: Ingest, *, reusable: bool) -> None:
        """Accepted: answer, then hand the mount and the recording to a ``SourceSession``; a
        ``reusable`` recording (one the URL names) is given back if the source sends no audio."""
        assert self.transport is not None
        self._disarm()
        mount.info = {k: v for k, v in request.headers.items() if k.startswith("ice-")}
        mount.content_type = "audio/mpeg"
        final = b""
        if request.method == "PUT" and request.expects_continue:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            final = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        else:
            self.transport.write(f"HTTP/{request.version} 200 OK\r\n\r\n".encode())
        config = self.host.config
        self._source = SourceSession(
            self.transport, mount, self.host.registry, ingest,
            buffer_bytes=config.source_buffer_bytes, silence_timeout=config.source_timeout,
            final_reply=final, give_back=self.host.give_back if reusable else None,
        )  # fmt: skip
        self._to(State.STREAMING)
        self.host.source_started(self._source, self.peer)
        log.info("source connected", extra={"mount": mount.name, "recording_id": ingest.id, "peer": self.peer,
                                            "method": request.method})  # fmt: skip
        self.transport.resume_reading()
        if self._early:
            self._source.feed(bytes(self._early))
            self._early.clear()
        if self._early_eof:
            self._source.end_of_stream()

    def _refuse(self, exc: BaseException, version: str, status: int = 0) -> None:
        """Answer from the error's own status and headers (the one error table), then close."""
        if isinstance(exc, RecordingEnded):
            exc = Forbidden(exc.detail)  # a second source on a recording: Icecast's "mount in use"
        if not isinstance(exc, MediaMgrError):
            exc = Unavailable("the database is not reachable; try again")
        status = status or exc.status
        if status in (400, 403, 404, 415):
            log.info("source refused", extra={"peer": self.peer, "status": status, "detail": exc.detail})
        self._reply(status, version, {"Allow": ALLOW, **exc.headers}, f"{exc.detail}\r\n".encode())

    # -- replies, timers -----------------------------------------------------------------------------

    def _write_head(self, status: int, version: str, headers: dict[str, str]) -> None:
        assert self.transport is not None
        lines = [f"HTTP/{version} {status} {REASONS.get(status, 'Error')}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace"))

    def _reply(
        self, status: int, version: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> None:
        """A complete answer, then close (libshout opens a new connection for each step anyway)."""
        if self.transport is None or self.transport.is_closing():
            return
        full = {"Server": "media-mgr", "Connection": "close", **(headers or {})}
        if body:
            full["Content-Type"] = full.get("Content-Type", "text/plain")
        full["Content-Length"] = str(len(body))
        self._write_head(status, version, full)
        if body:
            self.transport.write(body)
        self._close()

    def _close(self) -> None:
        self._stop_sending()
        self._disarm()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        if self.state is not State.CLOSED:
            self._to(State.CLOSED)

    def shutdown(self) -> None:
        """The server stops: sources end (interrupted, audio kept), everyone else is closed."""
        if self._source is not None:
            self._source.stop("shutdown")
        else:
            self._close()

    def abort(self) -> None:
        self._stop_sending()
        if self.transport is not None:
            self.transport.abort()

    def _arm(self, delay: float, callback: object) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(delay, callback)  # type: ignore[arg-type]

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timeout(self) -> None:
        if self.state is State.READ_HEAD:
            log.info("request head too slow", extra={"peer": self.peer})
            self._reply(408, "1.0", body=b"request head not received in time\r\n")

    def _auth_timeout(self) -> None:
        if self.state is State.AUTH:
            self._reply(503, "1.0", body=b"could not check the source in time\r\n")

    def _listener_stalled(self) -> None:
        if self.state is State.LISTENING and self._writing_paused:
            self.close("stalled")
