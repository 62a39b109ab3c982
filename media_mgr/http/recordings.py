"""REST for recordings: /v1/recordings.

``POST /v1/recordings`` answers with the two ways FreeSWITCH can deliver a recording (a ``shout_url``
for mod_shout's ``record``, a ``store_url`` for ``http_put`` of a finished file), issued by the
domain's ``RecordingUrls``, the same issuer ``media-mgr record-url`` uses.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from media_mgr.errors import InvalidRequest, NoData
from media_mgr.http.guard import AdminGuard
from media_mgr.http.openapi import GUARDED, MAX_OFFSET, NAME_PATTERN, audio_response, error_responses
from media_mgr.ids import HEX32_PATTERN, new_id
from media_mgr.media.library import check_account_id
from media_mgr.media.recording_urls import RecordingUrls
from media_mgr.recording.ingest import NewRecording
from media_mgr.recording.recorder import Recorder


class NewRecordingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str | None = Field(default=None, pattern=HEX32_PATTERN, description="owner; null: system")
    name: str | None = Field(
        default=None, max_length=255, pattern=NAME_PATTERN, description="default: <id>.<format>"
    )
    format: Literal["mp3", "wav"] = Field(default="mp3", description="mp3 for mod_shout; wav for http_put")
    id: str | None = Field(default=None, pattern=HEX32_PATTERN, description="default: a new id")


RecordingId = Annotated[str, Path(pattern=HEX32_PATTERN, description="32 lower-case hex")]


def recordings_router(recorder: Recorder, urls: RecordingUrls, guard: AdminGuard) -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(guard)], tags=["recordings"],
                       responses=error_responses(*GUARDED, 503))  # fmt: skip

    @router.post("/recordings", status_code=201, summary="Create a recording and the URLs that deliver it",
                 responses=error_responses(400, 409))  # fmt: skip
    async def create_recording(body: NewRecordingBody) -> JSONResponse:
        account = check_account_id(body.account_id)
        name = (body.name or "").strip()
        if any(ord(c) < 32 for c in name):
            raise InvalidRequest("name must be printable")
        rid = body.id or new_id()
        rec = await recorder.create(NewRecording(account, name or f"{rid}.{body.format}", body.format, rid))
        return JSONResponse({**rec.public(), **urls.issue(rec.id, rec.format)}, status_code=201,
                            headers={"location": f"/v1/recordings/{rec.id}"})  # fmt: skip

    @router.get("/recordings", summary="List recordings")
    async def list_recordings(
        account_id: Annotated[str | None, Query(pattern=HEX32_PATTERN)] = None,
        state: Literal["pending", "recording", "complete", "interrupted"] | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> dict[str, Any]:
        items, total = await recorder.find(check_account_id(account_id), state, limit, offset)
        next_offset = offset + len(items) if offset + len(items) < total else None
        return {"items": [r.public() for r in items], "total": total, "next_offset": next_offset}

    @router.get("/recordings/{recording_id}", summary="One recording", responses=error_responses(404))
    async def get_recording(recording_id: RecordingId) -> dict[str, Any]:
        return (await recorder.get(recording_id)).public()

    @router.api_route(
        "/recordings/{recording_id}/content", methods=["GET", "HEAD"], summary="The recorded audio",
        responses={200: audio_response("what is stored so far"), **error_responses(404)},
    )  # fmt: skip
    async def recording_content(request: Request, recording_id: RecordingId) -> Response:
        """What is stored so far (a recording still in progress gives what is committed)."""
        rec = await recorder.get(recording_id)
        if rec.blob_id is None:
            raise NoData(f"recording {rec.id} holds no audio ({rec.state})")
        headers = {"content-disposition": f'attachment; filename="{rec.id}.{rec.format}"'}
        if rec.state in ("complete", "interrupted"):
            headers["content-length"] = str(rec.size)
        if request.method == "HEAD":
            return Response(headers=headers, media_type=rec.content_type)
        body = recorder.store.read(rec.blob_id)
        return StreamingResponse(body, headers=headers, media_type=rec.content_type)

    return router
