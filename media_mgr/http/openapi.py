"""What the OpenAPI document promises, made to match what the server answers.

Every error answer is ``{"error", "detail"}`` (``errors.ErrorBody``), so each operation declares
that body for each error status it really returns (``error_responses``), never FastAPI's 422
validation schema. ``finish_openapi`` fixes what routes cannot say themselves: an operation id per
method for routes serving several methods (GET and HEAD), and the ``Retry-After`` header of a 503.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, BeforeValidator, Field

from media_mgr.media.playback import RATES

_DESCRIPTIONS = {
    400: "Invalid request: a value the schema allows but the service refuses (see detail)",
    401: "Missing or wrong credentials",
    403: "Not allowed from this client",
    404: "No such resource",
    409: "Conflicts with the current state (an id already taken, a recording already started)",
    410: "The URL or token expired",
    413: "Content too large",
    415: "Content is not audio the service can store (WAV or MP3)",
    416: "Range not satisfiable",
    422: "Request does not match the schema",
    503: "A dependency (database, broker, ffmpeg) is unavailable right now; retry after Retry-After",
}
_RETRY_AFTER = {"description": "seconds to wait before retrying", "schema": {"type": "string"}}


class ErrorModel(BaseModel):
    """The body of every error answer."""

    error: str = Field(description="stable code, e.g. not_found, conflict, unavailable")
    detail: str = Field(description="what went wrong, for humans")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route or router: the error body under each of ``statuses``."""
    return {s: {"model": ErrorModel, "description": _DESCRIPTIONS[s]} for s in statuses}


NAME_PATTERN = r"^[^\x00-\x1f]*$"
"""Names are printable: no control characters (and never NUL, which PostgreSQL text cannot hold)."""
MAX_OFFSET = 2**31 - 1
"""Largest list offset (PostgreSQL takes a bigint, a larger number is no page anyway)."""

RATE_SCHEMA: dict[str, Any] = {"enum": sorted(RATES)}
"""The sample rates a conversion may ask for (others get 400), declared where a rate is taken."""
OPTIONAL_RATE_SCHEMA: dict[str, Any] = {"enum": [*sorted(RATES), None]}


def _a_json_number(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON number")
    return value


JSON_NUMBER = BeforeValidator(_a_json_number)
"""For an integer of a JSON body (``Annotated[int | None, JSON_NUMBER]``): ``2`` or ``2.0`` (JSON
Schema's integer), never ``true`` or ``"2"``, which pydantic's lax mode would take (found by
tests/fuzz/test_openapi_fuzz.py). Outside the union, so the schema keeps ``minimum``/``maximum``."""

GUARDED = (401, 403, 422)
"""Errors of every ``/v1`` operation: the admin guard's, and FastAPI's validation."""

BINARY = {"schema": {"type": "string", "format": "binary"}}
AUDIO = {"audio/wav": BINARY, "audio/mpeg": BINARY}


def audio_response(description: str) -> dict[str, Any]:
    """A 200/206 whose body is the audio (WAV or MP3), not JSON."""
    return {"description": description, "content": AUDIO}


def finish_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Unique operation ids and the 503's ``Retry-After``, in the document FastAPI generated.

    Operation ids are the endpoint's name (``operation_id``); a name shared by several operations
    (one route serving GET and HEAD) gets the method appended to each, the same on every start.
    """
    operations = [
        (method, op)
        for item in schema.get("paths", {}).values()
        for method, op in item.items()
        if isinstance(op, dict) and "responses" in op
    ]
    counts: dict[str, int] = {}
    for _, op in operations:
        counts[op["operationId"]] = counts.get(op["operationId"], 0) + 1
    for method, op in operations:
        if counts[op["operationId"]] > 1:
            op["operationId"] = f"{op['operationId']}_{method}"
        unavailable = op["responses"].get("503")
        if unavailable is not None:
            unavailable.setdefault("headers", {})["Retry-After"] = _RETRY_AFTER
    return schema


def operation_id(route: Any) -> str:
    """The endpoint's own name (``finish_openapi`` tells apart the methods of one route)."""
    return str(route.name)
