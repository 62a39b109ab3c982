"""REST admin for media: /v1/media (INTERFACE.md "REST admin")."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from media_mgr.errors import InvalidRequest, TooLarge
from media_mgr.http.guard import require_admin
from media_mgr.http.state import state_of
from media_mgr.http.upload_body import read_upload
from media_mgr.media.library import check_account_id, check_language
from media_mgr.media.models import CONTENT_TYPES, MediaFilter
from media_mgr.media.playback import check_rate
from media_mgr.tts.speech import TtsOptions

router = APIRouter(prefix="/v1", dependencies=[Depends(require_admin)], tags=["media"])

AUDIO_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "account_id": {"type": "string"},
                        "name": {"type": "string"},
                        "prompt_id": {"type": "string"},
                        "language": {"type": "string"},
                        "id": {"type": "string"},
                    },
                }
            },
            "audio/wav": {"schema": {"type": "string", "format": "binary"}},
            "audio/mpeg": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

Text = Annotated[str | None, Query(max_length=255)]


def _check_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"upload of {declared} bytes exceeds the limit of {limit} bytes")


@router.post("/media", status_code=201, openapi_extra=AUDIO_BODY, summary="Upload media")
async def upload_media(
    request: Request,
    account_id: Text = None,
    name: Text = None,
    prompt_id: Text = None,
    language: Text = None,
    id: Text = None,
) -> JSONResponse:
    """Multipart (field ``file`` plus metadata fields) or the raw audio as the body.

    Metadata may also come as query parameters; multipart fields win.
    """
    st = state_of(request)
    _check_length(request, st.limit_upload_bytes)
    body = await read_upload(
        request.headers.get("content-type", ""), request.stream(), st.scratch_dir, st.limit_upload_bytes
    )
    f = body.fields
    try:
        meta = st.library.describe(
            account_id=f.get("account_id", account_id),
            name=f.get("name", name),
            prompt_id=f.get("prompt_id", prompt_id),
            language=f.get("language", language),
            media_id=f.get("id", id),
            filename=body.staged.filename,
        )
    except BaseException:
        body.staged.discard()
        raise
    try:
        item = await st.library.add(meta, body.staged)
    except Exception:
        st.metrics.uploads.labels("refused").inc()
        raise
    st.metrics.uploads.labels("stored").inc()
    st.metrics.upload_bytes.inc(item.size)
    return JSONResponse(item.public(), status_code=201, headers={"location": f"/v1/media/{item.id}"})


@router.get("/media", summary="List media")
async def list_media(
    request: Request,
    account_id: Text = None,
    system: bool | None = None,
    prompt_id: Text = None,
    language: Text = None,
    name: Annotated[str | None, Query(max_length=255, description="substring, case-insensitive")] = None,
    limit: Annotated[int, Query(ge=1)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    st = state_of(request)
    if limit > st.limit_list_page:
        raise InvalidRequest(f"limit must be at most {st.limit_list_page}")
    items, total = await st.library.list(
        MediaFilter(
            account_id=check_account_id(account_id),
            system=system,
            prompt_id=prompt_id,
            language=check_language(language),
            name=name,
            limit=limit,
            offset=offset,
        )
    )
    next_offset = offset + len(items) if offset + len(items) < total else None
    return {"items": [i.public() for i in items], "total": total, "next_offset": next_offset}


@router.get("/media/{media_id}", summary="Describe one media item")
async def get_media(request: Request, media_id: str) -> dict[str, Any]:
    return (await state_of(request).library.get(media_id)).public()


@router.api_route("/media/{media_id}/content", methods=["GET", "HEAD"], summary="Download the stored content")
async def get_content(
    request: Request,
    media_id: str,
    format: Annotated[Literal["wav", "mp3"] | None, Query(description="convert to this format")] = None,
    rate: Annotated[int | None, Query(description="resample to this rate")] = None,
) -> Response:
    st = state_of(request)
    item = await st.library.get(media_id)
    content = await st.variants.content(item, format or item.format, check_rate(rate))
    headers = {
        "content-length": str(content.size),
        "etag": content.etag,
        "content-disposition": f'attachment; filename="{item.id}.{content.format}"',
    }
    media_type = CONTENT_TYPES[content.format]
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers, media_type=media_type)
    return StreamingResponse(st.variants.read(content), headers=headers, media_type=media_type)


@router.put("/media/{media_id}/content", openapi_extra=AUDIO_BODY, summary="Replace the content")
async def replace_content(request: Request, media_id: str) -> dict[str, Any]:
    st = state_of(request)
    await st.library.get(media_id)  # 404 before reading a body we would throw away
    _check_length(request, st.limit_upload_bytes)
    body = await read_upload(
        request.headers.get("content-type", ""), request.stream(), st.scratch_dir, st.limit_upload_bytes
    )
    item = await st.library.replace(media_id, body.staged)
    st.metrics.upload_bytes.inc(item.size)
    return item.public()


@router.delete("/media/{media_id}", status_code=204, summary="Delete a media item")
async def delete_media(request: Request, media_id: str) -> Response:
    await state_of(request).library.delete(media_id)
    return Response(status_code=204)


class StreamUrlRequest(BaseModel):
    """The REST twin of an AMQP media_req."""

    model_config = ConfigDict(extra="forbid")

    media_name: str = Field(
        min_length=1, max_length=2048, examples=["/3a63acb1cc1fbd5fb5fa6b3d39b48b7e/0123..."]
    )
    stream_type: Literal["new", "extant"] = "new"
    protocol: Literal["http", "https", "shout", "vlc"] | None = None
    format: Literal["wav", "mp3"] | None = None
    rate: int | None = Field(default=None, description="resample to this rate")
    # A media_req's TTS keys, for a tts:// media_name (Text, Voice, Language, Engine).
    text: str | None = Field(default=None, max_length=10000, description="tts: the words (else the name's)")
    voice: str | None = Field(default=None, max_length=32, description="tts: male or female")
    language: str | None = Field(default=None, max_length=32, description="tts: e.g. en-us, fr")
    engine: str | None = Field(default=None, max_length=64, description="tts: engine name")


@router.post("/stream-urls", summary="Issue a stream URL for a Media-Name, as a media_req would")
async def issue_stream_url(request: Request, body: StreamUrlRequest) -> dict[str, str]:
    url = await state_of(request).playback.stream_url(
        body.media_name, body.stream_type, body.protocol, body.format, body.rate,
        tts=TtsOptions(body.text, body.voice, body.language, body.engine),
    )  # fmt: skip
    return {"stream_url": url}


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stream_url: str = Field(min_length=1, max_length=4096)


@router.post("/stream-urls/revoke", status_code=204, summary="Refuse an issued stream URL from now on")
async def revoke_stream_url(request: Request, body: RevokeRequest) -> Response:
    parts = urlsplit(body.stream_url).path.strip("/").split("/")
    if len(parts) != 3 or parts[0] not in ("single", "continuous"):
        raise InvalidRequest("not a stream URL of this service: expected /single|continuous/<token>/<name>")
    await state_of(request).playback.revoke(parts[1])
    return Response(status_code=204)


@router.get("/streams", summary="What is being served right now")
async def list_streams(request: Request) -> dict[str, Any]:
    return {"streams": state_of(request).activity.snapshot()}
