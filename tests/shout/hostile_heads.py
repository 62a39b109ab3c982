"""Hostile SHOUT request heads, generated from one seed, and a raw client that sends one of them.

Each ``Case`` says what the server must answer: an exact status, or any status from a set (an
empty answer is allowed where the server may close while we still send, so the kernel resets the
connection before we read). Nothing here is ever a source the server may accept: every source head
carries no credentials or wrong ones. Kinds: random bytes, valid heads cut at every position (sent
then half-closed, or reset mid-head), oversized lines, bad Basic auth, bad methods and versions,
ICE/Icy headers with junk, and slow heads (a byte at a time until the head deadline).
"""

from __future__ import annotations

import base64
import random
import re
import socket
import struct
from dataclasses import dataclass

# What the SHOUT port may answer a head it does not serve (never 100 or 200 to a source).
REFUSED = frozenset({400, 401, 403, 404, 405, 408, 415, 431, 503})
STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


@dataclass(frozen=True)
class Case:
    kind: str
    data: bytes
    expect: frozenset[int]  # the statuses allowed
    may_be_empty: bool = False  # the server may reset us before we read its answer
    reset: bool = False  # we reset the connection after sending (a client dying mid-head)


def status_or_none(reply: bytes) -> int | None:
    match = STATUS.match(reply)
    return int(match.group(1)) if match else None


def exchange(port: int, data: bytes, *, reset: bool = False, timeout: float = 10.0) -> bytes:
    """Send ``data``, half-close (or reset), and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return b""
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed while we were still sending
        got = bytearray()
        try:
            while piece := sock.recv(65536):
                got += piece
        except OSError:
            pass
        return bytes(got)


def basic(user_password: bytes) -> bytes:
    return b"Basic " + base64.b64encode(user_password)


def source_head(mount: bytes, auth: bytes | None = None, *, put: bool = False, extra: bytes = b"") -> bytes:
    lines = [b"PUT %s HTTP/1.1" % mount if put else b"SOURCE %s HTTP/1.0" % mount, b"Host: 127.0.0.1",
             b"User-Agent: libshout/2.4.6", b"Content-Type: audio/mpeg", b"ice-name: no name"]  # fmt: skip
    if auth is not None:
        lines.append(b"Authorization: " + auth)
    if put:
        lines.append(b"Expect: 100-continue")
    return b"\r\n".join(lines) + b"\r\n" + extra + b"\r\n"


class HeadFuzzer:
    """The cases of one run: ``recording_mount`` names a real pending recording whose token is
    ``token``; only altered copies of the token (and of the source password) are ever sent."""

    def __init__(self, seed: int, recording_mount: bytes, token: bytes, source_password: bytes) -> None:
        self.rnd = random.Random(seed)
        self.recording_mount = recording_mount
        self.token = token
        self.password = source_password

    def cases(self) -> list[Case]:
        return [*self.random_bytes(150), *self.truncated(), *self.oversized(), *self.bad_auth(40),
                *self.bad_methods(40), *self.ice_junk(30)]  # fmt: skip

    def random_bytes(self, count: int) -> list[Case]:
        out = []
        for i in range(count):
            prefix = (b"", b"SOURCE ", b"PUT /", b"GET /", b"OPTIONS * HTTP/1.1\r\n")[i % 5]
            out.append(Case("random", prefix + self.rnd.randbytes(self.rnd.randrange(0, 3000)), REFUSED | {204},
                            may_be_empty=True))  # fmt: skip
        return out

    def truncated(self) -> list[Case]:
        """Valid heads (a wrong-password source, an unauthenticated PUT, a listener) cut everywhere."""
        heads = [
            source_head(b"/fuzz-cut.mp3", basic(b"source:" + self.password + b"x")),
            source_head(self.recording_mount, put=True),
            b"GET /fuzz-cut.mp3 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: FreeSWITCH(mod_shout)/1.0\r\n"
            b"Accept: */*\r\nIcy-MetaData: 1\r\n\r\n",
        ]
        out = []
        for head in heads:
            for cut in range(len(head) - 1):  # the whole head minus at least its last LF
                out.append(Case("truncated", head[:cut], frozenset({400})))
            for cut in self.rnd.sample(range(1, len(head) - 1), 20):
                out.append(Case("truncated-reset", head[:cut], frozenset(), may_be_empty=True, reset=True))
        return out

    def oversized(self) -> list[Case]:
        big = [source_head(b"/fuzz-big.mp3", extra=b"ice-description: " + b"d" * n + b"\r\n")
               for n in (8200, 20000, 70000, 300000)]  # fmt: skip
        many = source_head(b"/fuzz-many.mp3", extra=b"".join(b"X-%d: y\r\n" % i for i in range(100)))
        long_target = b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n"
        blank = b"\r\n" * 5000
        out = [Case("oversized", h, frozenset({431}), may_be_empty=True) for h in (*big, many)]
        out += [Case("oversized", long_target, frozenset({400, 431}), may_be_empty=True),
                Case("oversized", blank, frozenset({400}), may_be_empty=True)]  # fmt: skip
        return out

    def bad_auth(self, random_count: int) -> list[Case]:
        pw = self.password
        values = [b"Basic", b"Basic ", b"Basic !!!!", b"Basic ====", basic(b"nocolon"), basic(b":"),
                  basic(b"source:"), basic(b"source:" + pw + b" "), basic(b"source:" + pw[:-1]),
                  basic(b"source:" + pw.upper()), basic(b"source:\x00" + pw), basic(b"\xff\xfe:\xc3\x28"),
                  basic(b"source:" + (b"B" if self.token[:1] == b"A" else b"A") + self.token[1:]),
                  basic(b"source:" + self.token.swapcase()), basic(b"source:" + self.token + b"x"), b"Bearer " + pw, b"Digest username=source", pw,
                  b"basic " + base64.b64encode(b"source:nope") + b" trailing",
                  b"Basic " + base64.b64encode(b"source:" + pw)[:-2]]  # fmt: skip
        values += [basic(self.rnd.randbytes(self.rnd.randrange(1, 80))) for _ in range(random_count)]
        out = []
        for i, value in enumerate(values):
            mount = (b"/fuzz-auth.mp3", self.recording_mount)[i % 2]
            out.append(Case("bad-auth", source_head(mount, value, put=i % 3 == 0), frozenset({401})))
        for mount in (b"/fuzz-auth.mp3", b"/" + self.rnd.randbytes(16).hex().encode() + b".mp3"):
            out.append(Case("bad-auth", source_head(mount, basic(b"source:" + self.token)), frozenset({401})))
        return out

    def bad_methods(self, random_count: int) -> list[Case]:
        fixed = [
            (b"get /fuzz.mp3 HTTP/1.1\r\n\r\n", {400}),
            (b"GET /fuzz.mp3 HTTP/2.0\r\n\r\n", {400}),
            (b"GET /fuzz.mp3 HTTP/1.1 extra\r\n\r\n", {400}),
            (b"GET /fuzz-nobody.mp3 HTTP/1.1\r\n\r\n", {404}),
            (b"HEAD /fuzz-nobody.mp3 HTTP/1.0\r\n\r\n", {404}),
            (b"SOURCE HTTP/1.0\r\n\r\n", {400}),
            (b"PUT /../etc/passwd HTTP/1.1\r\n\r\n", {400}),
            (b"PUT /fuzz?x=1 HTTP/1.1\r\n\r\n", {400, 401}),
            (b"SOURCE //fuzz.mp3 HTTP/1.0\r\n\r\n", {400}),
            (b"DELETE /fuzz.mp3 HTTP/1.1\r\n\r\n", {405}),
            (b"CONNECT 127.0.0.1:80 HTTP/1.1\r\n\r\n", {405}),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {400}),
        ]
        out = [Case("method", data, frozenset(ok)) for data, ok in fixed]
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ_!-"
        for _ in range(random_count):
            method = "Z" + "".join(self.rnd.choice(letters) for _ in range(self.rnd.randrange(0, 31)))
            out.append(Case("method", f"{method} /fuzz.mp3 HTTP/1.1\r\n\r\n".encode(), frozenset({405})))
        return out

    def ice_junk(self, count: int) -> list[Case]:
        """Unauthenticated sources and listeners with junk ICE/Icy headers: refused all the same."""
        names = [b"ice-name", b"ice-url", b"ice-genre", b"ice-description", b"ice-audio-info", b"ice-public",
                 b"icy-metadata", b"icy-br", b"content-type", b"expect", b"content-length"]  # fmt: skip
        out = []
        for i in range(count):
            junk = bytes(b for b in self.rnd.randbytes(self.rnd.randrange(0, 200)) if b not in b"\r\n")
            header = self.rnd.choice(names) + b":" + junk + b"\r\n"
            if i % 3 == 2:
                out.append(Case("ice-junk", b"GET /fuzz-nobody.mp3 HTTP/1.0\r\n" + header + b"\r\n",
                                frozenset({404})))  # fmt: skip
            else:
                out.append(Case("ice-junk", source_head(b"/fuzz-ice.mp3", extra=header, put=i % 2 == 0),
                                frozenset({401})))  # fmt: skip
        return out
