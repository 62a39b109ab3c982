"""Domain errors and the one table that turns them into wire answers.

Errors are raised as values of these classes on the way up and translated once at the edge
(HTTP status and JSON body, AMQP ``Error-Msg``, WebSocket close code), never guessed from a
message string. A fault of ours is never reported as "not found" (one of Kazoo's field failures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


class MediaMgrError(Exception):
    """Base of every error a user can cause; ``code`` is stable, ``detail`` is for humans."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    ws_close: ClassVar[int] = 1008

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequest(MediaMgrError):
    code = "invalid_request"
    status = 400


class Unauthorized(MediaMgrError):
    code = "unauthorized"
    status = 401


class Forbidden(MediaMgrError):
    code = "forbidden"
    status = 403


class NotFound(MediaMgrError):
    code = "not_found"
    status = 404


class NoData(MediaMgrError):
    """The record exists but has no content (Kazoo's ``no_data``)."""

    code = "no_data"
    status = 404


class Gone(MediaMgrError):
    code = "gone"
    status = 410


class Conflict(MediaMgrError):
    code = "conflict"
    status = 409


class TooLarge(MediaMgrError):
    code = "too_large"
    status = 413
    ws_close = 1009


class UnsupportedMedia(MediaMgrError):
    code = "unsupported_media_type"
    status = 415


class RangeNotSatisfiable(MediaMgrError):
    code = "range_not_satisfiable"
    status = 416


class Unprocessable(MediaMgrError):
    code = "unprocessable"
    status = 422


class Unavailable(MediaMgrError):
    """A dependency (database, broker, ffmpeg) is not there right now; retry later."""

    code = "unavailable"
    status = 503
    ws_close = 1011


@dataclass(frozen=True)
class ErrorBody:
    error: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"error": self.error, "detail": self.detail}
