"""Liveness, readiness and Prometheus metrics: unauthenticated, as probes and scrapers expect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from media_mgr.errors import Unavailable
from media_mgr.metrics import Metrics

Readiness = Callable[[], Awaitable[dict[str, bool]]]
"""Each dependency's name and whether it answers right now (database, broker)."""


def health_router(readiness: Readiness, metrics: Metrics) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Database and, when configured, broker reachable")
    async def readyz() -> JSONResponse:
        checks = await readiness()
        if all(checks.values()):
            return JSONResponse({"ready": True, "checks": checks})
        # A load balancer or probe retries like any client of an unavailable dependency.
        retry = {"retry-after": str(Unavailable.retry_after_seconds)}
        return JSONResponse({"ready": False, "checks": checks}, status_code=503, headers=retry)

    @router.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
