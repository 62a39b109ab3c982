"""Domain errors and the one table that turns them into wire answers.

Errors are raised as values of these classes on the way up and translated once at the edge, from
the attributes below: HTTP status, headers and JSON body (the SHOUT port answers with the same
status), AMQP ``Error-Msg``, WebSocket close code. Nothing is guessed from a message string. A fault
of ours is never reported as "not found" (one of Kazoo's field failures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

# Codes that are the Error-Msg Kazoo itself would send (reference kazoo_media_mgr.md 1.5).
_KAZOO_REASONS = frozenset({"not_found", "no_data", "invalid_media_name"})
MAX_AMQP_ERROR_MSG = 200


class MediaMgrError(Exception):
    """Base of every error a user can cause; ``code`` is stable, ``detail`` is for humans."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    ws_close: ClassVar[int] = 1008

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self._headers = headers

    @property
    def headers(self) -> dict[str, str]:
        """Response headers that belong to this answer (``WWW-Authenticate``, ``Retry-After``)."""
        return dict(self._headers or {})

    @property
    def amqp_reason(self) -> str:
        """``Error-Msg`` of a media_error: the stable code (Kazoo's reason atom where one exists)."""
        return self.code


class InvalidRequest(MediaMgrError):
    code = "invalid_request"
    status = 400

    @property
    def amqp_reason(self) -> str:
        """A bad request says what was wrong, so ecallmgr's log shows it."""
        if self.code in _KAZOO_REASONS or not self.detail:
            return self.code
        return self.detail[:MAX_AMQP_ERROR_MSG]


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
    retry_after_seconds: ClassVar[int] = 1

    @property
    def headers(self) -> dict[str, str]:
        return {"retry-after": str(self.retry_after_seconds), **super().headers}


@dataclass(frozen=True)
class ErrorBody:
    error: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"error": self.error, "detail": self.detail}
