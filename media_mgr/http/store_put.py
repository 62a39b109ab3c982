"""PUT /store/<token>/<name>: FreeSWITCH's ``http_put`` of a finished recording (Kazoo's store proxy).

Kazoo's ``media_store_proxy`` as a chain of checks, each knowing its answer (reference 3.2 and
checklist 19-21): authentication (Basic, else the peer address in ``store_put_acls``; 401 with
``Www-Authenticate: Basic realm="Kazoo Media Storage Proxy"``), the token (404 when it is not one
of ours, 410 once expired), the content type (``audio/*``, ``video/*``, ``image/*`` as sent, else
from the name's extension: 415; a name without extension gets one from the type: 400 if none),
then the body, streamed into a scratch file (counted against the limit as it arrives, never whole
in memory), probed (WAV or MP3, else 415) and stored as the recording's content with its media
record, in one transaction. 200 with ``{..., "ok": true}`` and a newline, as Kazoo answers.
Kazoo took only its configured pair as Basic credentials; ours also take the token itself as the
password, which is what issued store URLs carry when no pair is configured.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import mimetypes
import time
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response

from media_mgr.audio.probe import probe
from media_mgr.credentials import basic_credentials
from media_mgr.errors import InvalidRequest, NotFound, Unauthorized, UnsupportedMedia
from media_mgr.http.recordings import RecordingsEdge, edge_of
from media_mgr.media import urls
from media_mgr.media.staging import read_file, stage
from media_mgr.store.recordings import Audio

router = APIRouter(tags=["store"])

REALM = "Kazoo Media Storage Proxy"
_TYPE_EXT = {"audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/x-mpeg": "mp3", "audio/wav": "wav",
             "audio/x-wav": "wav", "audio/wave": "wav", "audio/vnd.wave": "wav"}  # fmt: skip
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class StorePutConfig:
    authenticate: bool = True
    username: str | None = None
    password: str | None = None
    acls: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/24"),)

    @staticmethod
    def parse_acls(text: str) -> tuple[Network, ...]:
        return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in text.split(",") if p.strip())


class StoreUnauthorized(Unauthorized):
    """401 with Kazoo's store realm."""


def check_authn(config: StorePutConfig, request: Request, token: str) -> None:
    if not config.authenticate:
        return
    authorization = request.headers.get("authorization", "")
    if authorization.strip().lower().startswith("basic"):
        creds = basic_credentials(authorization)
        if creds is not None:
            user, password = creds
            pair = config.username and config.password
            if pair and _same(user, config.username or "") and _same(password, config.password or ""):
                return
            if _same(password, token):
                return
        raise StoreUnauthorized("wrong store credentials")
    peer = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        raise StoreUnauthorized("send Basic credentials") from None
    if not any(address in net for net in config.acls):
        raise StoreUnauthorized("send Basic credentials (this address is not in store_put_acls)")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def check_type(content_type: str, name: str) -> tuple[str, str]:
    """(content type, file name with an extension), as media_store_proxy derives them."""
    mime = content_type.split(";")[0].strip().lower()
    if mime.split("/")[0] in ("audio", "video", "image"):
        if "." not in name:
            ext = _TYPE_EXT.get(mime) or (mimetypes.guess_extension(mime) or "").lstrip(".")
            if not ext:
                raise InvalidRequest(f"no file extension is known for {mime}")
            name = f"{name}.{ext}"
        return mime, name
    guessed = mimetypes.guess_type(name)[0] or ""
    if guessed.split("/")[0] not in ("audio", "video", "image"):
        raise UnsupportedMedia(f"{name!r} is not audio (send Content-Type: audio/mpeg or audio/wav)")
    return guessed, name


@router.api_route("/store/{token}/{name}", methods=["PUT", "POST"], summary="Store a finished recording")
async def store(request: Request, token: str, name: str) -> Response:
    edge: RecordingsEdge = edge_of(request)
    config = edge.store_put
    try:
        check_authn(config, request, token)
    except StoreUnauthorized as exc:
        return Response(f"401 Unauthorized. {exc.detail}\n", status_code=401, media_type="text/html",
                        headers={"www-authenticate": f'Basic realm="{REALM}"'})  # fmt: skip
    claims = urls.verify(edge.urls.secret, token, time.time())
    if claims.kind != "store":
        raise NotFound("unknown store token")
    mime, name = check_type(request.headers.get("content-type", ""), name)
    staged = await stage(request.stream(), edge.scratch_dir, edge.limit_bytes)
    try:
        info = await probe(staged.path, edge.probe_timeout)
        audio = Audio(info.duration_ms, info.sample_rate, info.channels, info.codec)
        rec = await edge.recorder.store_file(claims.media_id, info.format, audio, read_file(staged.path))
    finally:
        staged.discard()
    body = {**rec.public(), "ok": True, "attachment": name, "attachment_content_type": mime}
    return Response(json.dumps(body) + "\n", media_type="application/json")
