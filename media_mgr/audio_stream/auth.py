"""Who may open an audio_stream WebSocket (INTERFACE.md "Issued URLs"); pure.

The module can send Basic auth (channel variables ``MOD_AUDIO_BASIC_AUTH_USERNAME``/``PASSWORD``) and
a URL of its choosing, but no other header (reference A1.4), so the token comes as ``?token=`` or as
the Basic password (a Bearer header is taken too). A token is the admin token, or one this service
signed: kind ``record``, naming the recording the stream is written into (``POST /v1/recordings``
or ``POST /v1/audio-stream-urls`` make one). With no admin token set, loopback clients need none.
Checks are a compare and an HMAC, fast enough for amigniter's 1 s connect budget (B2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from media_mgr.credentials import basic_credentials, bearer_token, is_loopback, same_secret
from media_mgr.errors import Forbidden, Gone, NotFound, Unauthorized
from media_mgr.media import urls

PATH = "/audio_stream"


@dataclass(frozen=True)
class Grant:
    via: str  # "admin", "token" or "loopback"
    recording_id: str | None = None  # the recording a signed token names


def presented_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """``?token=``, else the Basic auth password, else a Bearer token."""
    if query.get("token"):
        return query["token"]
    authorization = headers.get("authorization", "")
    creds = basic_credentials(authorization)
    if creds is not None:
        return creds[1] or None
    return bearer_token(authorization)


def authorize(
    token: str | None, client: str | None, admin_token: str | None, secret: bytes, now: float
) -> Grant:
    """The grant for a connection; ``Unauthorized`` (no token) or ``Forbidden`` (a wrong one)."""
    if token is not None:
        if admin_token is not None and same_secret(token, admin_token):
            return Grant("admin")
        if len(token) == urls.TOKEN_CHARS:
            try:
                claims = urls.verify(secret, token, now)
            except (NotFound, Gone):
                pass
            else:
                if claims.kind == "record":
                    return Grant("token", claims.media_id)
    if admin_token is None and is_loopback(client):
        return Grant("loopback")
    if token is None:
        raise Unauthorized("send ?token=<token> or Basic auth whose password is the token")
    raise Forbidden("the token is neither the admin token nor a valid recording token of this service")


def issue(secret: bytes, recording_id: str, expires: int, now: float) -> str:
    claims = urls.StreamClaims(recording_id, 0, "wav", None, "single", expires, kind="record")
    return urls.issue(secret, claims, now)


def ws_url(host: str, port: int, token: str, *, rate: int | None = None, channels: int | None = None) -> str:
    """``ws://host:port/audio_stream?token=...``: 92 characters of path, under the module's 128.

    ``&rate=`` and ``&channels=`` when the caller knows them: a binary-dialect stream then has its
    format at once (amigniter's module otherwise waits about 1.25 s for its metadata to say it); the
    path stays under 128 characters with both.
    """
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    url = f"ws://{host}:{port}{PATH}?token={quote(token, safe='')}"
    if rate is not None:
        url += f"&rate={rate}"
    if channels is not None:
        url += f"&channels={channels}"
    return url
