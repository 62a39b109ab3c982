"""The FastAPI application: the routers it is given, and the one place errors become HTTP answers.

The composition root builds each router from its dependencies (``playback_router(...)``,
``admin_router(...)``, ...) and hands them to :func:`create_app`; no module of this package reaches
for shared state, so none imports another's routes.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

import media_mgr
from media_mgr.errors import MediaMgrError
from media_mgr.http import docs
from media_mgr.http.access import AccessMiddleware
from media_mgr.http.errors import error_response, plain_error_response
from media_mgr.http.openapi import finish_openapi, operation_id
from media_mgr.metrics import Metrics

log = logging.getLogger("media_mgr.http")

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

# Framework errors (unknown path, wrong method, Starlette's own) get the code our table would give.
_STATUS_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
                 416: "range_not_satisfiable", 422: "invalid_request"}  # fmt: skip


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MediaMgrError)
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return plain_error_response(422, "invalid_request", "; ".join(problems) or "invalid request")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "error")
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    if exc.status_code == 405:
        headers["allow"] = ", ".join(_allowed_methods(request)) or headers.get("allow", "")
    return plain_error_response(exc.status_code, code, str(exc.detail), headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method the OpenAPI document gives this path (Starlette's 405 names one route's only)."""
    for template, item in request.app.openapi().get("paths", {}).items():
        if _path_regex(template).fullmatch(request.url.path):
            return sorted(m.upper() for m in item if m.upper() in _METHODS)
    return []


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


@functools.lru_cache(maxsize=256)
def _path_regex(template: str) -> re.Pattern[str]:
    """``/v1/media/{media_id}`` -> a regex matching the paths it names (a parameter is one segment)."""
    parts = re.split(r"\{[^}/]+\}", template)
    return re.compile("[^/]+".join(re.escape(p) for p in parts))


CLIENT_CLOSED_REQUEST = 499
"""nginx's status for a request its client gave up on; only the access log line ever shows it."""


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client closed the connection while sending its body: its own doing, no fault of ours.
    The access line (info, status 499) is the one line about it; nobody is left to read this."""
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return plain_error_response(500, "internal_error", "the server failed; the log has the details")


def create_app(
    routers: Iterable[APIRouter], metrics: Metrics, *, lifespan: Lifespan | None = None
) -> FastAPI:
    """The ASGI app serving ``routers``, with the error handlers and the access log around them."""
    app = FastAPI(
        title="media-mgr",
        version=media_mgr.__version__,
        description="Kazoo-style media manager for FreeSWITCH: media store, playback, recording.",
        lifespan=lifespan,
        docs_url=None,  # docs.install serves /docs and /redoc with local assets (no CDN)
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    docs.install(app)
    app.add_exception_handler(MediaMgrError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
    for router in routers:
        app.include_router(router)
    app.add_middleware(AccessMiddleware, metrics=metrics)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish_openapi(
                get_openapi(
                    title=app.title, version=app.version, description=app.description, routes=app.routes
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
