"""The FastAPI application: routers, and the one place errors become HTTP answers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import media_mgr
from media_mgr.errors import ErrorBody, MediaMgrError
from media_mgr.http import admin, docs, health
from media_mgr.http.access import AccessMiddleware
from media_mgr.http.guard import BearerRequired
from media_mgr.metrics import Metrics

log = logging.getLogger("media_mgr.http")

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

_STATUS_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
                 416: "range_not_satisfiable", 422: "invalid_request"}  # fmt: skip


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(ErrorBody(code, detail).as_dict(), status_code=status, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MediaMgrError)
    headers = {"www-authenticate": "Bearer"} if isinstance(exc, BearerRequired) else None
    if exc.status >= 500:
        log.warning("dependency unavailable", extra={"detail": exc.detail})
    return error_response(exc.status, exc.code, exc.detail, headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return error_response(422, "invalid_request", "; ".join(problems) or "invalid request")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "the server failed; the log has the details")


def create_app(lifespan: Lifespan, metrics: Metrics, routers: list[Any] | None = None) -> FastAPI:
    app = FastAPI(
        title="media-mgr",
        version=media_mgr.__version__,
        description="Kazoo-style media manager for FreeSWITCH: media store, playback, recording.",
        lifespan=lifespan,
        docs_url=None,  # docs.install serves /docs and /redoc with local assets (no CDN)
        redoc_url=None,
    )
    docs.install(app)
    app.add_exception_handler(MediaMgrError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.include_router(health.router)
    app.include_router(admin.router)
    for router in routers or []:
        app.include_router(router)
    app.add_middleware(AccessMiddleware, metrics=metrics)
    return app
