"""The operator console: static pages at ``/console/``, and the waveform pictures they show.

The pages are hand-written HTML, CSS and JavaScript shipped inside the package (no build step, no
CDN): they are read once when the router is built and served from memory with an ETag. In the
browser they use only the documented REST API (``/v1/*``, ``/readyz``, ``/metrics``), with the admin
token sent as a Bearer header. The server-side part is ``GET /v1/media/{id}/waveform.svg``, guarded
like the rest of ``/v1``, and ``/console/config.json`` (the SHOUT port, for live mounts).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

import media_mgr
from media_mgr.console.waveform import MediaSource, Waveforms
from media_mgr.errors import NotFound
from media_mgr.http.openapi import GUARDED, error_responses
from media_mgr.ids import HEX32_PATTERN

Guard = Callable[[Request], Awaitable[None]]
"""The ``/v1`` admin check (token or loopback), as a FastAPI dependency."""

_TYPES = {
    "html": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "svg": "image/svg+xml",
}
_SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Every file of ``media_mgr/console/static``, by name."""
    assets: dict[str, Asset] = {}
    for entry in resources.files("media_mgr.console").joinpath("static").iterdir():
        suffix = entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _TYPES:
            body = entry.read_bytes()
            assets[entry.name] = Asset(body, _TYPES[suffix], f'"{hashlib.sha256(body).hexdigest()[:20]}"')
    return assets


def content_policy(request: Request, shout_port: int) -> str:
    """Nothing from elsewhere: scripts, styles and fetches from this origin; audio also from live mounts."""
    host = request.url.hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        f"img-src 'self' blob: data:; media-src 'self' blob: http://{host}:{shout_port}; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def _not_modified(request: Request, etag: str) -> bool:
    return etag in (request.headers.get("if-none-match") or "")


def console_router(library: MediaSource, guard: Guard, shout_port: int) -> APIRouter:
    """``/console/`` (and ``/`` redirecting to it) plus ``GET /v1/media/{id}/waveform.svg``."""
    router = APIRouter()
    assets = load_assets()
    waveforms = Waveforms(library)

    def asset_response(request: Request, name: str) -> Response:
        asset = assets.get(name)
        if asset is None:
            raise NotFound(f"no console file {name}")
        headers = {
            "etag": asset.etag,
            "cache-control": "no-cache",
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "content-security-policy": content_policy(request, shout_port),
        }
        if _not_modified(request, asset.etag):
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    @router.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    @router.get("/console", include_in_schema=False)
    async def console_bare() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    @router.get(
        "/console/",
        summary="The operator console (a web page)",
        tags=["console"],
        response_class=Response,
        responses={200: {"description": "the page", "content": {"text/html": {}}}},
    )
    async def console_index(request: Request) -> Response:
        return asset_response(request, "index.html")

    @router.get(
        "/console/config.json", summary="What the console needs beyond /v1: the SHOUT port", tags=["console"]
    )
    async def console_config() -> JSONResponse:
        return JSONResponse({"shout_port": shout_port, "version": media_mgr.__version__},
                            headers={"cache-control": "no-store"})  # fmt: skip

    @router.get("/console/{name}", include_in_schema=False)
    async def console_asset(request: Request, name: str) -> Response:
        return asset_response(request, name)

    @router.get(
        "/v1/media/{media_id}/waveform.svg",
        dependencies=[Depends(guard)],
        tags=["media"],
        summary="The item's waveform (peaks per column; clipped columns red), an SVG cached per revision",
        response_class=Response,
        responses={200: {"description": "the picture", "content": {"image/svg+xml": {}}},
                   **error_responses(*GUARDED, 404, 503)},
    )  # fmt: skip
    async def waveform(request: Request, media_id: Annotated[str, Path(pattern=HEX32_PATTERN)]) -> Response:
        picture = await waveforms.get(media_id)
        headers = {
            "etag": picture.etag,
            "cache-control": "private, no-cache",
            "content-security-policy": _SVG_POLICY,
            "x-content-type-options": "nosniff",
        }
        if _not_modified(request, picture.etag):
            return Response(status_code=304, headers=headers)
        return Response(picture.svg, media_type=_TYPES["svg"], headers=headers)

    return router
