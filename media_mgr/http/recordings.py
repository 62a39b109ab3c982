"""REST for recordings (/v1/recordings) and relays to Icecast (/v1/relays).

``POST /v1/recordings`` answers with the two ways FreeSWITCH can deliver a recording: a
``shout_url`` for mod_shout's ``record`` (its own user and password, a mount naming the recording)
and a ``store_url`` for ``http_put`` of a finished file (Kazoo's /store/ path). Both carry tokens
signed with the secret all instances share, so whichever instance the switch reaches accepts them.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from media_mgr.errors import InvalidRequest, NoData, Unavailable
from media_mgr.http.guard import require_admin
from media_mgr.http.state import state_of
from media_mgr.media import urls
from media_mgr.media.library import check_account_id
from media_mgr.recording.ingest import NewRecording
from media_mgr.recording.models import Recording
from media_mgr.recording.recorder import Recorder

if TYPE_CHECKING:
    from media_mgr.http.store_put import StorePutConfig

router = APIRouter(prefix="/v1", dependencies=[Depends(require_admin)], tags=["recordings"])


class RelayControl(Protocol):
    """What the SHOUT side offers for relays (shout/relay.py); kept abstract so edges stay apart."""

    async def add(
        self, *, mount: str | None, media_id: str | None, host: str, port: int, target_mount: str, user: str,
        password: str,
    ) -> dict[str, Any]: ...  # fmt: skip

    def list(self) -> list[dict[str, Any]]: ...

    def get(self, relay_id: str) -> dict[str, Any]: ...

    async def remove(self, relay_id: str) -> None: ...


@dataclass(frozen=True)
class RecordingUrls:
    """Issues a recording's shout_url and store_url (media.urls tokens of kind record / store)."""

    secret: bytes
    host: str
    http_port: int
    shout_port: int
    shout_ttl: int
    store_ttl: int
    store_user: str | None = None
    store_password: str | None = None

    def issue(self, rec: Recording, now: float | None = None) -> dict[str, str]:
        now = time.time() if now is None else now
        record = urls.issue(self.secret, self._claims(rec, "record", now + self.shout_ttl), now)
        store = urls.issue(self.secret, self._claims(rec, "store", now + self.store_ttl), now)
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        # Each URL carries its own user (the recording id) and password (the token). A configured
        # Kazoo proxy pair replaces them in store URLs, as Kazoo's authenticated_store URLs have it.
        user, password = (self.store_user, self.store_password) if self.store_user else (rec.id, store)
        auth = f"{quote(user, safe='')}:{quote(password or '', safe='')}"
        return {
            "shout_url": f"shout://{rec.id}:{record}@{host}:{self.shout_port}/{rec.id}.mp3",
            "store_url": f"http://{auth}@{host}:{self.http_port}/store/{store}/{rec.id}.{rec.format}",
        }

    @staticmethod
    def _claims(rec: Recording, kind: urls.Kind, expires: float) -> urls.StreamClaims:
        fmt: urls.Format = "wav" if rec.format == "wav" else "mp3"
        return urls.StreamClaims(rec.id, 0, fmt, None, "single", int(expires), kind)


@dataclass
class RecordingsEdge:
    """What the recording routes need, handed over once at start-up (``HttpState.recordings``)."""

    recorder: Recorder
    urls: RecordingUrls
    scratch_dir: Path
    limit_bytes: int
    probe_timeout: float
    store_put: StorePutConfig
    relays: RelayControl | None = None


def edge_of(request: Request) -> RecordingsEdge:
    edge = state_of(request).recordings
    if edge is None:
        raise Unavailable("recordings are not available in this process")
    return edge


class NewRecordingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str | None = Field(default=None, description="owner (32 hex); null: system")
    name: str | None = Field(default=None, max_length=255, description="default: <id>.<format>")
    format: Literal["mp3", "wav"] = Field(default="mp3", description="mp3 for mod_shout; wav for http_put")
    id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$", description="default: a new id")


@router.post("/recordings", status_code=201, summary="Create a recording and the URLs that deliver it")
async def create_recording(request: Request, body: NewRecordingBody) -> JSONResponse:
    edge = edge_of(request)
    account = check_account_id(body.account_id)
    name = (body.name or "").strip()
    if any(ord(c) < 32 for c in name):
        raise InvalidRequest("name must be printable")
    rid = body.id or secrets.token_hex(16)
    rec = await edge.recorder.create(NewRecording(account, name or f"{rid}.{body.format}", body.format, rid))
    return JSONResponse({**rec.public(), **edge.urls.issue(rec)}, status_code=201,
                        headers={"location": f"/v1/recordings/{rec.id}"})  # fmt: skip


@router.get("/recordings", summary="List recordings")
async def list_recordings(
    request: Request,
    account_id: Annotated[str | None, Query(max_length=64)] = None,
    state: Literal["pending", "recording", "complete", "interrupted"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    items, total = await edge_of(request).recorder.find(check_account_id(account_id), state, limit, offset)
    next_offset = offset + len(items) if offset + len(items) < total else None
    return {"items": [r.public() for r in items], "total": total, "next_offset": next_offset}


@router.get("/recordings/{recording_id}", summary="Describe one recording")
async def get_recording(request: Request, recording_id: str) -> dict[str, Any]:
    return (await edge_of(request).recorder.get(_check_id(recording_id))).public()


@router.api_route("/recordings/{recording_id}/content", methods=["GET", "HEAD"], summary="The recorded audio")
async def recording_content(request: Request, recording_id: str) -> Response:
    """What is stored so far (a recording still in progress gives what is committed)."""
    edge = edge_of(request)
    rec = await edge.recorder.get(_check_id(recording_id))
    if rec.blob_id is None:
        raise NoData(f"recording {rec.id} holds no audio ({rec.state})")
    headers = {"content-disposition": f'attachment; filename="{rec.id}.{rec.format}"'}
    if rec.state in ("complete", "interrupted"):
        headers["content-length"] = str(rec.size)
    if request.method == "HEAD":
        return Response(headers=headers, media_type=rec.content_type)
    body = edge.recorder.store.read(rec.blob_id)
    return StreamingResponse(body, headers=headers, media_type=rec.content_type)


def _check_id(value: str) -> str:
    lowered = value.strip().lower()
    if len(lowered) != 32 or any(c not in "0123456789abcdef" for c in lowered):
        raise InvalidRequest(f"{value!r} is not a recording id (32 hexadecimal characters)")
    return lowered


class RelayTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=8000, ge=1, le=65535)
    mount: str = Field(min_length=2, max_length=255, pattern=r"^/")
    user: str = Field(default="source", max_length=255)
    password: str = Field(min_length=1, max_length=255)


class RelayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mount: str | None = Field(default=None, description="a live mount of ours to relay", pattern=r"^/")
    media_id: str | None = Field(default=None, description="or a stored item, played in a loop (MOH)")
    target: RelayTarget


def _relays(request: Request) -> RelayControl:
    relays = edge_of(request).relays
    if relays is None:
        raise Unavailable("relays are not available in this process")
    return relays


@router.post("/relays", status_code=201, summary="Relay a live mount or a looped item to an Icecast mount")
async def add_relay(request: Request, body: RelayBody) -> dict[str, Any]:
    if (body.mount is None) == (body.media_id is None):
        raise InvalidRequest("give exactly one of mount (live) or media_id (looped)")
    t = body.target
    return await _relays(request).add(mount=body.mount, media_id=body.media_id, host=t.host, port=t.port,
                                      target_mount=t.mount, user=t.user, password=t.password)  # fmt: skip


@router.get("/relays", summary="List relays and their state")
async def list_relays(request: Request) -> dict[str, Any]:
    return {"items": _relays(request).list()}


@router.get("/relays/{relay_id}", summary="One relay")
async def get_relay(request: Request, relay_id: str) -> dict[str, Any]:
    return _relays(request).get(relay_id)


@router.delete("/relays/{relay_id}", status_code=204, summary="Stop a relay")
async def delete_relay(request: Request, relay_id: str) -> Response:
    await _relays(request).remove(relay_id)
    return Response(status_code=204)
