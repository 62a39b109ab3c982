"""The request head of a SHOUT-port connection, parsed from bytes alone (sans-I/O).

Source clients are old and varied (libshout 2.4.6, ffmpeg's ``icecast://``, ezstream), so headers
are read leniently: bare LF line ends, no space after the colon, folded lines, lines without a
colon skipped. What is not HTTP at all (a TLS hello, binary, a request line without ``HTTP/1.x``),
a head larger than ``max_bytes`` or with more than ``max_headers`` lines is refused with the status
to answer before closing. The body (raw MP3 for a source) is whatever follows the blank line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from media_mgr.credentials import basic_credentials

_REQUEST_LINE = re.compile(rb"([A-Z][A-Z0-9_!-]{0,31}) +(\S{1,4096}) +HTTP/(1\.[01])")
_METHOD_PREFIX = re.compile(rb"[A-Z][A-Z0-9_!-]{0,31}( |$)")


class HeadError(Exception):
    """The head cannot be served: answer ``status`` (or just close when ``status`` is 0)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class ShoutRequest:
    method: str
    target: str
    version: str  # "1.0" or "1.1"
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names; repeats joined by ", "

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)

    @property
    def expects_continue(self) -> bool:
        return self.header("expect").strip().lower() == "100-continue"

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        """(user, password) from ``Authorization: Basic``; None when absent or unreadable."""
        return basic_credentials(self.header("authorization"))


class HeadParser:
    """Feed bytes until ``feed`` returns the request; ``rest`` then holds the body's first bytes.

    Each byte is searched a bounded number of times, however the head is split (a slow loris
    sends one byte per packet): searches resume where the last one stopped. ``scanned`` counts
    the bytes searched, so a test can hold it linear.
    """

    def __init__(self, max_bytes: int = 8192, max_headers: int = 64) -> None:
        self.max_bytes = max_bytes
        self.max_headers = max_headers
        self.rest = b""
        self.scanned = 0
        self._buf = bytearray()
        self._checked_line = False
        self._searched = 0  # the blank line cannot start before this offset

    @property
    def started(self) -> bool:
        """Some of a head came (and no whole head yet)."""
        return bool(self._buf)

    def feed(self, data: bytes) -> ShoutRequest | None:
        self._buf += data
        buf = self._buf
        if not self._checked_line:
            self._check_start(buf)
        self.scanned += len(buf) - self._searched
        end, sep = _head_end(buf, self._searched)
        if end < 0:
            self._searched = max(0, len(buf) - 3)  # a CRLFCRLF may straddle the next piece
            if len(buf) > self.max_bytes:
                raise HeadError(431, f"request head larger than {self.max_bytes} bytes")
            return None
        if end > self.max_bytes:
            raise HeadError(431, f"request head larger than {self.max_bytes} bytes")
        head = bytes(buf[:end])
        self.rest = bytes(buf[end + sep :])
        self._buf, self._searched = bytearray(), 0
        return self._parse(head)

    def _check_start(self, buf: bytearray) -> None:
        """Refuse what cannot become a request line as soon as it shows (no need to wait)."""
        self.scanned += len(buf) - self._searched
        newline = buf.find(b"\n", self._searched)
        if newline >= 0:
            if not _REQUEST_LINE.fullmatch(bytes(buf[:newline]).rstrip(b"\r")):
                raise HeadError(400, "malformed request line (expected METHOD /path HTTP/1.x)")
            self._checked_line = True
        elif buf and not _METHOD_PREFIX.match(bytes(buf[:33])):
            raise HeadError(400, "not an HTTP request")

    def _parse(self, head: bytes) -> ShoutRequest:
        lines = head.replace(b"\r\n", b"\n").split(b"\n")
        match = _REQUEST_LINE.fullmatch(lines[0].rstrip(b"\r"))
        if match is None:
            raise HeadError(400, "malformed request line (expected METHOD /path HTTP/1.x)")
        if len(lines) - 1 > self.max_headers:
            raise HeadError(431, f"more than {self.max_headers} header lines")
        headers: dict[str, str] = {}
        last: str | None = None
        for raw in lines[1:]:
            line = raw.decode("latin-1").rstrip("\r")
            if line[:1] in (" ", "\t") and last is not None:  # obsolete folding: continue the value
                headers[last] = f"{headers[last]} {line.strip()}"
                continue
            name, colon, value = line.partition(":")
            name = name.strip().lower()
            if not colon or not name or " " in name:
                continue  # lenient: a malformed line is skipped, not fatal
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
            last = name
        method, target, version = (g.decode("latin-1") for g in match.groups())
        return ShoutRequest(method, target, version, headers)


def _head_end(buf: bytearray, start: int) -> tuple[int, int]:
    """Where the head ends and the length of the blank line after it (CRLFCRLF or LFLF), searching
    from ``start`` (what lies before it was searched already)."""
    crlf = buf.find(b"\r\n\r\n", start)
    lf = buf.find(b"\n\n", start)
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf, 4
    if lf >= 0:
        return lf, 2
    return -1, 0
