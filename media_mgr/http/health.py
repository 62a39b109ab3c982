"""Liveness, readiness and Prometheus metrics: unauthenticated, as probes and scrapers expect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from media_mgr.errors import Unavailable
from media_mgr.metrics import Metrics

_READINESS = {"type": "object", "properties": {"ready": {"type": "boolean"}, "checks": {"type": "object"}}}
_READYZ_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "every dependency answers", "content": {"application/json": {"schema": _READINESS}}},
    503: {"description": "some dependency does not", "content": {"application/json": {"schema": _READINESS}}},
}
_EXPOSITION = {"description": "Prometheus text exposition format 0.0.4",
               "content": {"text/plain": {"schema": {"type": "string"}}}}  # fmt: skip

Readiness = Callable[[], Awaitable[dict[str, bool]]]
"""Each dependency's name and whether it answers right now (database, broker)."""


def health_router(readiness: Readiness, metrics: Metrics) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz", summary="Database and, when configured, broker reachable", responses=_READYZ_RESPONSES
    )
    async def readyz() -> JSONResponse:
        checks = await readiness()
        if all(checks.values()):
            return JSONResponse({"ready": True, "checks": checks})
        # A load balancer or probe retries like any client of an unavailable dependency.
        retry = {"retry-after": str(Unavailable.retry_after_seconds)}
        return JSONResponse({"ready": False, "checks": checks}, status_code=503, headers=retry)

    @router.get(
        "/metrics", summary="Prometheus metrics", response_class=PlainTextResponse,
        responses={200: _EXPOSITION},
    )  # fmt: skip
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
