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

import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from fastapi import APIRouter, Request, Response

from media_mgr.audio.probe import probe
from media_mgr.config import Settings
from media_mgr.credentials import Network, basic_credentials, in_networks, same_secret
from media_mgr.errors import InvalidRequest, Unauthorized, UnsupportedMedia
from media_mgr.http.openapi import error_responses
from media_mgr.media.recording_urls import RecordingUrls
from media_mgr.media.staging import read_file, stage
from media_mgr.recording.recorder import Recorder
from media_mgr.store.recordings import Audio

REALM = "Kazoo Media Storage Proxy"
_TYPE_EXT = {"audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/x-mpeg": "mp3", "audio/wav": "wav",
             "audio/x-wav": "wav", "audio/wave": "wav", "audio/vnd.wave": "wav"}  # fmt: skip
_CHALLENGE = {"www-authenticate": f'Basic realm="{REALM}"'}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **error_responses(400, 404, 409, 410, 413, 415, 422, 503),
    401: {"description": "Kazoo's text page, with a Basic challenge",
          "content": {"text/html": {"schema": {"type": "string"}}}},
}  # fmt: skip


@dataclass(frozen=True)
class StorePutConfig:
    """Kazoo's proxy_store_authenticate, proxy_username/_password and proxy_store_acls; our limits."""

    scratch_dir: Path
    limit_bytes: int
    probe_timeout: float
    authenticate: bool = True
    username: str | None = None
    password: str | None = None
    acls: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            scratch_dir=settings.data_dir / "scratch",
            limit_bytes=settings.limit_recording_bytes,
            probe_timeout=settings.timeout_probe,
            authenticate=settings.store_put_authenticate,
            username=settings.store_put_username,
            password=settings.store_put_password,
            acls=settings.store_put_acls,
        )


def check_authn(config: StorePutConfig, authorization: str, peer: str | None, token: str) -> None:
    """Basic credentials (the configured pair, or the token as password), else a peer in the ACLs."""
    if not config.authenticate:
        return
    if authorization.strip().lower().startswith("basic"):
        creds = basic_credentials(authorization)
        if creds is not None:
            user, password = creds
            pair = config.username and config.password
            if (
                pair
                and same_secret(user, config.username or "")
                and same_secret(password, config.password or "")
            ):
                return
            if same_secret(password, token):
                return
        raise Unauthorized("wrong store credentials", headers=_CHALLENGE)
    if not in_networks(peer, config.acls):
        raise Unauthorized(
            "send Basic credentials (this address is not in store_put_acls)", headers=_CHALLENGE
        )


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


def store_put_router(recorder: Recorder, urls: RecordingUrls, config: StorePutConfig) -> APIRouter:
    """``PUT``/``POST /store/<token>/<name>``; authenticated by its own rules, not the admin guard."""
    router = APIRouter(tags=["store"])

    @router.api_route(
        "/store/{token}/{name}", methods=["PUT", "POST"], summary="Store a finished recording",
        responses=_RESPONSES,
    )  # fmt: skip
    async def store(request: Request, token: str, name: str) -> Response:
        peer = request.client.host if request.client else None
        try:
            check_authn(config, request.headers.get("authorization", ""), peer, token)
        except Unauthorized as exc:  # Kazoo's answer is a text page, not our JSON
            page = f"401 Unauthorized. {exc.detail}\n"
            return Response(page, status_code=exc.status, media_type="text/html", headers=exc.headers)
        recording_id = urls.verify(token, "store")
        mime, name = check_type(request.headers.get("content-type", ""), name)
        staged = await stage(request.stream(), config.scratch_dir, config.limit_bytes)
        try:
            info = await probe(staged.path, config.probe_timeout)
            audio = Audio(info.duration_ms, info.sample_rate, info.channels, info.codec)
            rec = await recorder.store_file(recording_id, info.format, audio, read_file(staged.path))
        finally:
            staged.discard()
        body = {**rec.public(), "ok": True, "attachment": name, "attachment_content_type": mime}
        return Response(json.dumps(body) + "\n", media_type="application/json")

    return router
