"""The HTTP answer for a domain error, from the one table in ``media_mgr.errors``.

Status, headers (``WWW-Authenticate``, ``Retry-After``) and the JSON body all come from the error's
own attributes; the app's exception handler and the handlers that answer an error themselves (a 416
with its ``Content-Range``) both go through :func:`error_response`, so they cannot disagree.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi.responses import JSONResponse

from media_mgr.errors import ErrorBody, MediaMgrError
from media_mgr.store.errors import StoreUnavailable

log = logging.getLogger("media_mgr.http")


def error_response(exc: MediaMgrError, extra_headers: Mapping[str, str] | None = None) -> JSONResponse:
    """``{"error", "detail"}`` with the error's status and headers (plus ``extra_headers``)."""
    if exc.status >= 500:  # the store logs a database outage once (store/outage.py), not per request
        level = logging.DEBUG if isinstance(exc, StoreUnavailable) else logging.WARNING
        log.log(level, "dependency unavailable", extra={"detail": exc.detail, "error": exc.code})
    headers = {**exc.headers, **(extra_headers or {})}
    return JSONResponse(ErrorBody(exc.code, exc.detail).as_dict(), status_code=exc.status, headers=headers)


def plain_error_response(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The same body for errors that are not ours (framework 404/405, validation, a crash)."""
    return JSONResponse(ErrorBody(code, detail).as_dict(), status_code=status, headers=dict(headers or {}))
