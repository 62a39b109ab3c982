"""REST admin for media: /v1/media (INTERFACE.md "REST admin")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from media_mgr.config import Settings
from media_mgr.errors import TooLarge
from media_mgr.http.guard import AdminGuard
from media_mgr.http.openapi import (
    GUARDED,
    MAX_OFFSET,
    NAME_PATTERN,
    RATE_SCHEMA,
    audio_response,
    error_responses,
)
from media_mgr.http.upload_body import UploadBody, read_upload
from media_mgr.ids import HEX32_PATTERN
from media_mgr.media.library import (
    LANGUAGE_PATTERN,
    PROMPT_ID_PATTERN,
    MediaLibrary,
    check_account_id,
    check_language,
)
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
                        "account_id": {"type": "string", "pattern": HEX32_PATTERN},
                        "name": {"type": "string", "maxLength": 255, "pattern": NAME_PATTERN},
                        "prompt_id": {"type": "string", "pattern": PROMPT_ID_PATTERN},
                        "language": {"type": "string", "maxLength": 64, "pattern": LANGUAGE_PATTERN},
                        "id": {"type": "string", "pattern": HEX32_PATTERN},
                    },
                }
            },
            "audio/wav": {"schema": {"type": "string", "format": "binary"}},
            "audio/mpeg": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

Text = Annotated[str | None, Query(max_length=255)]
Name = Annotated[str | None, Query(max_length=255, pattern=NAME_PATTERN)]
PromptId = Annotated[str | None, Query(pattern=PROMPT_ID_PATTERN)]
Language = Annotated[str | None, Query(max_length=64, pattern=LANGUAGE_PATTERN)]
HexId = Annotated[str | None, Query(pattern=HEX32_PATTERN, description="32 lower-case hex")]
MediaId = Annotated[str, Path(pattern=HEX32_PATTERN, description="32 lower-case hex")]


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
    router = APIRouter(prefix="/v1", dependencies=[Depends(guard)], tags=["media"],
                       responses=error_responses(*GUARDED, 503))  # fmt: skip
    default_page = min(100, limits.list_page)

    async def read_body(request: Request) -> UploadBody:
        """The upload staged in the scratch dir; refused before reading when it declares too much."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.upload_bytes:
            raise TooLarge(f"upload of {declared} bytes exceeds the limit of {limits.upload_bytes} bytes")
        content_type = request.headers.get("content-type", "")
        return await read_upload(content_type, request.stream(), library.scratch_dir, limits.upload_bytes)

    @router.post("/media", status_code=201, openapi_extra=AUDIO_BODY, summary="Upload media",
                 responses=error_responses(400, 409, 413, 415))  # fmt: skip
    async def upload_media(
        request: Request,
        account_id: HexId = None,
        name: Name = None,
        prompt_id: PromptId = None,
        language: Language = None,
        id: HexId = None,
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

    @router.get("/media", summary="List media", responses=error_responses(400))
    async def list_media(
        request: Request,
        account_id: HexId = None,
        system: bool | None = None,
        prompt_id: PromptId = None,
        language: Language = None,
        name: Annotated[
            str | None, Query(max_length=255, pattern=NAME_PATTERN, description="substring, case-insensitive")
        ] = None,
        limit: int = Query(default_page, ge=1, le=limits.list_page),  # the limit is known here only
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> dict[str, Any]:
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

    @router.get("/media/{media_id}", summary="Describe one media item", responses=error_responses(404))
    async def get_media(request: Request, media_id: MediaId) -> dict[str, Any]:
        return (await library.get(media_id)).public()

    @router.api_route(
        "/media/{media_id}/content", methods=["GET", "HEAD"], summary="Download the stored content",
        responses={200: audio_response("the content, converted when asked"), **error_responses(400, 404)},
    )  # fmt: skip
    async def get_content(
        request: Request,
        media_id: MediaId,
        format: Annotated[Literal["wav", "mp3"] | None, Query(description="convert to this format")] = None,
        rate: Annotated[
            int | None, Query(description="resample to this rate", json_schema_extra=RATE_SCHEMA)
        ] = None,
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

    @router.put("/media/{media_id}/content", openapi_extra=AUDIO_BODY, summary="Replace the content",
                responses=error_responses(400, 404, 413, 415))  # fmt: skip
    async def replace_content(request: Request, media_id: MediaId) -> dict[str, Any]:
        await library.get(media_id)  # 404 before reading a body we would throw away
        body = await read_body(request)
        item = await library.replace(media_id, body.staged)
        metrics.upload_bytes.inc(item.size)
        return item.public()

    @router.delete("/media/{media_id}", status_code=204, summary="Delete a media item",
                   responses=error_responses(404))  # fmt: skip
    async def delete_media(request: Request, media_id: MediaId) -> Response:
        await library.delete(media_id)
        return Response(status_code=204)

    return router
