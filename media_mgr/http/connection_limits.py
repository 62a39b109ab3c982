"""The HTTP port's connection limits: request-head size and time, and how many connections at once.

uvicorn's httptools protocol has none of them: a 150 MB header is parsed (in quadratic time, as
httptools joins the pieces of a header value) while the event loop serves nothing else, and a
client that opens a connection and sends nothing keeps it forever. Icecast's ``connection.c``
bounds all three; so does this subclass, with the same answers the SHOUT port gives:

- a request head larger than ``max_head_bytes``: 431 and close, decided after the first read that
  passes the limit, so a huge head costs one read, never a parse of the whole;
- a head not complete ``head_timeout`` seconds after the connection opened (or the previous
  response ended): 408 and close (slow loris);
- more than ``max_connections`` open on this port (WebSockets included): 503 and close at once.

Every refusal is logged as one info line: it is the client's failure, not ours.

It also lets a :class:`Responder` (the stream URLs' ``http.playback.StreamAnswers``) answer a
request as soon as its head is complete, without an ASGI task: the hottest requests then cost a
dictionary lookup, a ``send`` of the head and a ``sendfile`` of the body. A plain ``GET`` read whole
in one piece (how players send them) is offered before httptools sees it, checked by one regular
expression as strict llhttp would take it; any other request once parsed. Only a request that would
be answered at once anyway is offered (nothing in flight or queued on the connection, the transport
not paused for writing, no upgrade), so pipelining, keep-alive, back-pressure and the connection
limits work as for any other request. The head and keep-alive timeouts share one timer per
connection, restarted by a clock read per answer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Protocol

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("media_mgr.http")

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}


@dataclass(frozen=True)
class ConnectionLimits:
    max_head_bytes: int = 16384
    head_timeout: float = 15.0
    max_connections: int = 8192


class Answer(NamedTuple):
    """A whole answer: its head, its body, and a file holding the same body (-1: none) to send it
    from without copying it into the socket (``sendfile``). A tuple: made for every answer, it
    costs half a frozen dataclass."""

    head: bytes
    body: bytes
    file: int = -1


class Responder(Protocol):
    headers: frozenset[bytes]
    """Lowercase header names the answer depends on: a request with any of them goes to ASGI."""

    def respond(self, url: bytes, request_id: bytes, client: str, defaults: bytes,
                keep_alive: bool) -> Answer | None:  # fmt: skip
        """The whole answer to a ``GET`` of ``url`` without a body (``request_id``: its
        ``X-Request-Id``, empty if none; ``defaults``: uvicorn's header lines, to put after the
        status line), or None to let the ASGI app answer. It logs and counts what it answers."""


_MSG_MORE = socket.MSG_MORE
_sendfile = os.sendfile
_ASGI_HEADERS = frozenset({
    b"content-length", b"transfer-encoding", b"expect",  # a body follows: the ASGI way reads it
    b"x-forwarded-for", b"x-forwarded-proto", b"forwarded",  # uvicorn's proxy headers change the client
})  # fmt: skip
_PARSER_HEADERS = frozenset({b"connection", b"upgrade"})  # keep-alive and upgrades: httptools decides
_REQUEST_ID = re.compile(rb"\nx-request-id:[ \t]*([^\r]*)\r", re.IGNORECASE)  # (never in a request line)


def _plain_get_pattern(names: frozenset[bytes]) -> re.Pattern[bytes]:
    """A whole ``GET`` head, alone: its URL (group 1), then header lines as strict llhttp takes them (a
    token, no space before the colon, no control byte in the value), none of them one of ``names``."""
    named = b"|".join(re.escape(name) for name in sorted(names))
    line = rb"(?!(?:" + named + rb"):)[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n"
    return re.compile(rb"GET (/[!-~]*) HTTP/1\.1\r\n(?:" + line + rb")*\r\n", re.IGNORECASE)


class _Borrowed(socket.socket):
    """A socket object over a transport's descriptor, made once per connection (uvloop's own
    ``get_extra_info("socket")`` makes a new one inside every call), that never closes it: the
    descriptor is uvloop's, and may be another connection's by the time this object goes."""

    def __del__(self) -> None:
        self.detach()


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head that is over the limit."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above; built per server by :func:`protocol_class`."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    responder: ClassVar[Responder | None] = None
    _defaults: ClassVar[list[object]] = [None, b""]  # uvicorn's default headers, and their bytes

    _head_bytes = 0  # raw bytes of the head being received
    _head_fields = 0  # bytes of the URL and header fields parsed so far
    _in_head = True  # between a message's start (or the connection's) and its headers' end
    _since = 0.0  # loop time the connection opened or the last response ended: both timeouts run from it
    _waiting = False  # no byte since the last response ended (uvicorn's keep-alive timeout runs)
    _timer: asyncio.TimerHandle | None = None  # one per connection, for both timeouts, at _timer_at
    _timer_at = 0.0
    _first_timeout = 0.0  # the shorter of the two, when both run
    _refused = False
    _ready: tuple[Answer, bool] | None = None  # answered by the responder, to write at message end
    _fd = -1  # the connection's socket, for sendfile
    _sock: socket.socket | None = None
    _between = True  # no message begun since the last one completed: the parser waits for a request line
    _names: ClassVar[frozenset[bytes]] = _ASGI_HEADERS  # with the responder's own
    _plain: ClassVar[re.Pattern[bytes]] = re.compile(b"(?!)")  # a GET _plain_get takes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            self.transport = transport
            peer = transport.get_extra_info("peername")
            extra = {"peer": peer[0] if peer else None, "limit": self.limits.max_connections}
            log.info("http connection refused: too many connections", extra=extra)
            self._answer(503, "too many connections")
            return
        super().connection_made(transport)
        self._first_timeout = min(self.timeout_keep_alive, self.limits.head_timeout)
        pseudo = transport.get_extra_info("socket")
        if pseudo is not None:
            self._fd = pseudo.fileno()
            self._sock = _Borrowed(fileno=self._fd)
        self._await_request(waiting=False)  # the head timeout runs, uvicorn's keep-alive not yet

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        if self._refused:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused or self.transport.is_closing():
            return
        if (
            self._between
            and data.endswith(b"\r\n\r\n")
            and data.startswith(b"GET /")
            and self._plain_get(data)
        ):
            return
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse_head()
                return
            raise
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self._stop_timer()
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            msg = "Invalid HTTP request received."
            log.info("http request refused: malformed", extra={"peer": self._peer()})
            self.send_400_response(msg)
            return
        if self._in_head and self._head_bytes > self.limits.max_head_bytes:
            self._refuse_head()

    def _plain_get(self, data: bytes) -> bool:
        """Answer a whole ``GET`` read in one piece (and alone) with the responder, without httptools
        and its callbacks: what ``on_headers_complete`` would do, for the stream URLs' requests as
        clients send them. Anything this does not take exactly (another version, a header it does not
        parse as strict llhttp would, or that the answer depends on) is parsed as any request."""
        cycle, responder, flow = self.cycle, self.responder, self.flow
        if (responder is None or self.pipeline or (cycle is not None and not cycle.response_complete)
                or flow.write_paused or len(data) > self.limits.max_head_bytes):  # fmt: skip
            return False
        plain = self._plain.fullmatch(data)
        if plain is None:
            return False
        rid = _REQUEST_ID.search(data)
        client = self.client[0] if self.client else ""
        defaults = self._default_lines()
        answer = responder.respond(plain.group(1), rid.group(1) if rid else b"", client, defaults, True)
        if answer is None:
            return False
        self._write(answer)
        # on_response_complete, for a keep-alive answer of a request that never reached httptools
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return True
        if flow.read_paused:
            flow.resume_reading()
        self._since = now = self.loop.time()
        self._waiting = True
        if self._timer is None or now + self._first_timeout < self._timer_at:
            self._start_timer(now + self._first_timeout)
        return True

    def on_message_begin(self) -> None:
        self._between = False
        super().on_message_begin()
        self._in_head = True
        self._head_fields = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF, as on the wire
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        idle = not self.pipeline and (self.cycle is None or self.cycle.response_complete)
        idle = idle and not self.transport.is_closing()  # a pipelined request after "close": ASGI drops it
        if (
            self.responder is not None
            and idle
            and not self.flow.write_paused
            and not self.parser.should_upgrade()
            and self.parser.get_method() == b"GET"
        ):
            rid = b""
            for name, value in self.headers:
                if name in self._names:
                    break
                if name == b"x-request-id" and not rid:
                    rid = value
            else:
                keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
                client = self.client[0] if self.client else ""
                answer = self.responder.respond(self.url, rid, client, self._default_lines(), keep_alive)
                if answer is not None:
                    self._ready = (answer, keep_alive)
                    return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._ready is None:  # never one with a body: the responder leaves those to ASGI
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._between = True
        ready = self._ready
        if ready is None:
            super().on_message_complete()
            return
        self._ready = None
        answer, keep_alive = ready
        self._write(answer)
        if not keep_alive:
            self.transport.close()
        self.on_response_complete()

    def _write(self, answer: Answer) -> None:
        """Head and body; the body from its file with ``sendfile`` (no copy) when the transport holds
        nothing unsent, as much as the socket takes now, and the rest through the transport."""
        head, body, file = answer
        sent_head = sent_body = 0
        sock = self._sock
        if file >= 0 and sock is not None and not self.transport.get_write_buffer_size():
            try:
                # MSG_MORE: the head waits for the body and leaves in its first segment, not in a packet
                # of its own (what TCP_CORK did, without two setsockopt calls around every answer).
                sent_head = sock.send(head, _MSG_MORE)
                if sent_head == len(head):
                    sent_body = _sendfile(self._fd, file, 0, len(body))
            except OSError:
                pass  # full (the transport sends the rest when it can), or broken (it finds out)
        if sent_head == len(head) and sent_body == len(body):
            return
        if sent_head < len(head):
            self.transport.writelines([head[sent_head:], body])
        else:
            self.transport.write(memoryview(body)[sent_body:])

    def _default_lines(self) -> bytes:
        """uvicorn's default header lines (its ``date``, renewed every second) as bytes, made once each."""
        headers = self.server_state.default_headers
        kept = self._defaults
        if kept[0] is not headers:
            kept[1] = b"".join(b"%s: %s\r\n" % pair for pair in headers)
            kept[0] = headers
        return kept[1]  # type: ignore[return-value]

    def on_response_complete(self) -> None:
        """uvicorn's, with both timeouts restarted by a time taken instead of two timers replaced."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        self._in_head = True
        self._head_bytes = 0
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            self._await_request(waiting=False)
        else:
            self._await_request(waiting=True)

    def _unset_keepalive_if_required(self) -> None:
        self._waiting = False  # data came: uvicorn's keep-alive timeout no longer runs

    def _count(self, size: int) -> None:
        self._head_fields += size
        if self._head_fields > self.limits.max_head_bytes:
            raise _HeadTooLarge

    def _refuse_head(self) -> None:
        log.info("http request refused: head too large",
                 extra={"peer": self._peer(), "limit": self.limits.max_head_bytes})  # fmt: skip
        self._answer(431, f"request head over {self.limits.max_head_bytes} bytes")

    def _await_request(self, waiting: bool) -> None:
        """Both timeouts (the head's, and uvicorn's keep-alive when ``waiting``) run from now. One
        timer serves them and is moved only to an earlier time: a keep-alive request costs a clock
        read, not two timers cancelled and two made (a fired timer finds what is due, or waits on)."""
        self._since = now = self.loop.time()
        self._waiting = waiting
        due = now + (self._first_timeout if waiting else self.limits.head_timeout)
        if self._timer is None or due < self._timer_at:
            self._start_timer(due)

    def _start_timer(self, due: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = due
        self._timer = self.loop.call_at(due, self._timed_out)

    def _stop_timer(self) -> None:
        self._in_head = self._waiting = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time() + 0.001  # the loop's timers may wake a little early
        idle = self._since + self.timeout_keep_alive if self._waiting else None
        head = self._since + self.limits.head_timeout if self._in_head else None
        if idle is not None and idle <= now and (head is None or idle <= head):
            self.timeout_keep_alive_handler()
        elif head is not None and head <= now:
            log.info("http request refused: head not complete in time",
                     extra={"peer": self._peer(), "timeout": self.limits.head_timeout})  # fmt: skip
            self._answer(408, "request head not complete in time")
        elif idle is not None or head is not None:
            self._start_timer(min(t for t in (idle, head) if t is not None))

    def _answer(self, status: int, detail: str) -> None:
        self._stop_timer()
        body = f'{{"error": "{_CODES[status]}", "detail": "{detail}"}}'.encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, _REASONS[status], len(body), body)
        )
        self.transport.close()

    def _peer(self) -> str | None:
        return self.client[0] if self.client else None


_CODES = {408: "request_timeout", 431: "head_too_large", 503: "unavailable"}


def protocol_class(
    limits: ConnectionLimits, responder: Responder | None = None
) -> type[LimitedHttpToolsProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` carrying these limits (and responder)."""
    names = _ASGI_HEADERS | (responder.headers if responder is not None else frozenset())
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,),
                {"limits": limits, "responder": responder, "_defaults": [None, b""], "_names": names,
                 "_plain": _plain_get_pattern(names | _PARSER_HEADERS)})  # fmt: skip
