"""Per-request signed stream tokens and the URLs that carry them; pure.

Kazoo put the whole request, base64'd Erlang terms, unsigned, into the path (reference
kazoo_media_mgr.md 2.4.2): guessable, never expiring, and served stale after a re-upload. Ours is
a fixed 40-byte binary (what, which revision, how, until when, a random nonce) plus a truncated
HMAC-SHA256, in unpadded base64url: 72 characters of ``[A-Za-z0-9_-]``, safe in a path, in a
dialplan string that goes through ``/bin/sh`` (mod_shell_stream) and in a log line.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
import struct
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from media_mgr.errors import Gone, NotFound
from media_mgr.ids import is_hex32

Format = Literal["wav", "mp3"]
StreamType = Literal["single", "continuous"]
Kind = Literal["play", "store", "record"]
Scheme = Literal["http", "shout"]

_VERSION = 1
_FORMATS: tuple[Format, ...] = ("wav", "mp3")
_STREAM_TYPES: tuple[StreamType, ...] = ("single", "continuous")
_KINDS: tuple[Kind, ...] = ("play", "store", "record")
# version, format, stream type, kind, media id, revision, rate (0: as stored), expires, nonce
_PAYLOAD = struct.Struct(">BBBB16sIII8s")
_MAC_BYTES = 14
_TOKEN_BYTES = _PAYLOAD.size + _MAC_BYTES
TOKEN_CHARS = (4 * _TOKEN_BYTES + 2) // 3
_MAC_CONTEXT = b"media-mgr stream token\x00"
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_EXT = re.compile(r"[a-z0-9]{1,8}")
_HOST = re.compile(r"[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]")
NONCE_BYTES = _PAYLOAD.size - struct.calcsize(">BBBB16sIII")
_U32 = 0xFFFFFFFF


@dataclass(frozen=True)
class StreamClaims:
    """What a token grants: one revision of one item, in one format, until ``expires`` (unix s).

    ``nonce`` is filled in by ``issue`` (fresh for every URL) and read back by ``verify``.
    """

    media_id: str
    revision: int
    format: Format
    rate: int | None
    stream_type: StreamType
    expires: int
    kind: Kind = "play"
    nonce: bytes = b""

    def __post_init__(self) -> None:
        if not is_hex32(self.media_id):
            raise ValueError(f"media_id {self.media_id!r} is not 32 lowercase hex characters")
        if not 0 <= self.revision <= _U32 or not 0 <= self.expires <= _U32:
            raise ValueError("revision and expires must fit in 32 bits")
        if self.rate is not None and not 0 < self.rate <= _U32:
            raise ValueError(f"bad rate {self.rate}")
        if self.nonce and len(self.nonce) != NONCE_BYTES:
            raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
        if self.format not in _FORMATS or self.stream_type not in _STREAM_TYPES or self.kind not in _KINDS:
            raise ValueError(f"unknown format, stream type or kind in {self!r}")


def issue(secret: bytes, claims: StreamClaims, now: float, *, nonce: bytes | None = None) -> str:
    """A new token for ``claims`` (any nonce in them is replaced by a fresh one unless given)."""
    _check_secret(secret)
    if claims.expires <= now:
        raise ValueError(f"claims expired at {claims.expires}, before now ({now:.0f})")
    fresh = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
    if len(fresh) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    payload = _PAYLOAD.pack(
        _VERSION,
        _FORMATS.index(claims.format),
        _STREAM_TYPES.index(claims.stream_type),
        _KINDS.index(claims.kind),
        bytes.fromhex(claims.media_id),
        claims.revision,
        claims.rate or 0,
        claims.expires,
        fresh,
    )
    return base64.urlsafe_b64encode(payload + _mac(secret, payload)).rstrip(b"=").decode()


def verify(secret: bytes, token: str, now: float) -> StreamClaims:
    """The claims of a token we issued; ``NotFound`` if it is not one, ``Gone`` once it expired."""
    _check_secret(secret)
    raw = _decode(token)
    payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        raise NotFound("unknown stream token")
    version, fmt, stream_type, kind, media_id, revision, rate, expires, nonce = _PAYLOAD.unpack(payload)
    if (
        version != _VERSION
        or fmt >= len(_FORMATS)
        or stream_type >= len(_STREAM_TYPES)
        or kind >= len(_KINDS)
    ):
        raise NotFound("unknown stream token version")
    if now >= expires:
        raise Gone("this stream URL has expired; ask for a new one")
    return StreamClaims(
        media_id=media_id.hex(),
        revision=revision,
        format=_FORMATS[fmt],
        rate=rate or None,
        stream_type=_STREAM_TYPES[stream_type],
        expires=expires,
        kind=_KINDS[kind],
        nonce=nonce,
    )


def _decode(token: str) -> bytes:
    """The token's bytes, accepting only the exact canonical spelling ``issue`` produces."""
    if len(token) != TOKEN_CHARS or not _TOKEN.fullmatch(token):
        raise NotFound("unknown stream token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise NotFound("unknown stream token") from None
    if len(raw) != _TOKEN_BYTES or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != token:
        raise NotFound("unknown stream token")
    return raw


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.digest(secret, _MAC_CONTEXT + payload, "sha256")[:_MAC_BYTES]  # one C call


def _check_secret(secret: bytes) -> None:
    if len(secret) < 16:
        raise ValueError("the URL signing secret must be at least 16 bytes")


def build_stream_url(
    scheme: Scheme, host: str, port: int, stream_type: StreamType, token: str, name: str, ext: str
) -> str:
    """``<scheme>://host:port/<stream_type>/<token>/<name>.<ext>``, the name percent-encoded.

    ``shout://`` is what mod_shout wants for MP3 (it fetches the same path over plain HTTP).
    TLS is not served here, so ``https``/``shouts`` are refused rather than issued broken.
    """
    if scheme not in ("http", "shout"):
        raise ValueError(f"cannot issue {scheme!r} URLs (only http and shout)")
    if stream_type not in _STREAM_TYPES:
        raise ValueError(f"unknown stream type {stream_type!r}")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    if not _HOST.fullmatch(host) or not 0 < port <= 65535:
        raise ValueError(f"bad host or port: {host!r}:{port}")
    if not _TOKEN.fullmatch(token) or not _EXT.fullmatch(ext):
        raise ValueError(f"bad token or extension: {token!r} {ext!r}")
    return f"{scheme}://{host}:{port}/{stream_type}/{token}/{quote(name or 'media', safe='')}.{ext}"
