"""REST admin for media: /v1/media (INTERFACE.md "REST admin")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from media_mgr.config import Settings
from media_mgr.errors import InvalidRequest, TooLarge
from media_mgr.http.guard import AdminGuard
from media_mgr.http.upload_body import UploadBody, read_upload
from media_mgr.media.library import MediaLibrary, check_account_id, check_language
from media_mgr.media.models import CONTENT_TYPES, MediaFilter
from media_mgr.media.playback import check_rate
from media_mgr.media.variants import VariantCache
from media_mgr.metrics import Metrics

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


@dataclass(frozen=True)
class AdminLimits:
    """How big an upload and how long a list page may be."""

    upload_bytes: int
    list_page: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(settings.limit_upload_bytes, settings.limit_list_page)


def admin_router(
    library: MediaLibrary, variants: VariantCache, guard: AdminGuard, limits: AdminLimits, metrics: Metrics
) -> APIRouter:
    """``/v1/media``: upload, list, describe, download, replace, delete."""
    router = APIRouter(prefix="/v1", dependencies=[Depends(guard)], tags=["media"])

    async def read_body(request: Request) -> UploadBody:
        """The upload staged in the scratch dir; refused before reading when it declares too much."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.upload_bytes:
            raise TooLarge(f"upload of {declared} bytes exceeds the limit of {limits.upload_bytes} bytes")
        content_type = request.headers.get("content-type", "")
        return await read_upload(content_type, request.stream(), library.scratch_dir, limits.upload_bytes)

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
        body = await read_body(request)
        f = body.fields
        try:
            meta = library.describe(
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
            item = await library.add(meta, body.staged)
        except Exception:
            metrics.uploads.labels("refused").inc()
            raise
        metrics.uploads.labels("stored").inc()
        metrics.upload_bytes.inc(item.size)
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
        if limit > limits.list_page:
            raise InvalidRequest(f"limit must be at most {limits.list_page}")
        items, total = await library.list(
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
        return (await library.get(media_id)).public()

    @router.api_route(
        "/media/{media_id}/content", methods=["GET", "HEAD"], summary="Download the stored content"
    )
    async def get_content(
        request: Request,
        media_id: str,
        format: Annotated[Literal["wav", "mp3"] | None, Query(description="convert to this format")] = None,
        rate: Annotated[int | None, Query(description="resample to this rate")] = None,
    ) -> Response:
        item = await library.get(media_id)
        content = await variants.content(item, format or item.format, check_rate(rate))
        headers = {
            "content-length": str(content.size),
            "etag": content.etag,
            "content-disposition": f'attachment; filename="{item.id}.{content.format}"',
        }
        media_type = CONTENT_TYPES[content.format]
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers, media_type=media_type)
        return StreamingResponse(variants.read(content), headers=headers, media_type=media_type)

    @router.put("/media/{media_id}/content", openapi_extra=AUDIO_BODY, summary="Replace the content")
    async def replace_content(request: Request, media_id: str) -> dict[str, Any]:
        await library.get(media_id)  # 404 before reading a body we would throw away
        body = await read_body(request)
        item = await library.replace(media_id, body.staged)
        metrics.upload_bytes.inc(item.size)
        return item.public()

    @router.delete("/media/{media_id}", status_code=204, summary="Delete a media item")
    async def delete_media(request: Request, media_id: str) -> Response:
        await library.delete(media_id)
        return Response(status_code=204)

    return router
