"""GET/HEAD /single/<token>/<name> and /continuous/<token>/<name>: the per-request stream URLs.

WAV for mod_shell_stream and mod_http_cache (Content-Length, Range, ETag); MP3 for mod_shout,
plain from the first byte, with ICY metadata only when the client sends ``Icy-MetaData: 1``
(mod_shout never does, and unsolicited metadata breaks its decoder: reference 2.6). Small bodies
come from the playback cache in one write; larger ones stream from the database chunk by chunk, in
constant memory whatever the file size.

These are the service's hottest requests (one per prompt a call plays), so :class:`StreamFastPath`
answers them in front of FastAPI: same answers, same access line and metrics, none of the routing
through every route nor the dependency machinery. A request it does not recognise exactly (a query
string, ICY metadata, another method) goes to the FastAPI routes below, which stay the documented
(OpenAPI) and complete implementation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from media_mgr.audio.icy import framed_length, interleave
from media_mgr.errors import MediaMgrError, RangeNotSatisfiable
from media_mgr.http.access import AccessMiddleware
from media_mgr.http.errors import error_response
from media_mgr.http.openapi import RATE_SCHEMA, audio_response, error_responses
from media_mgr.http.ranges import select_range, unsatisfied_content_range
from media_mgr.media.activity import Activity, ActivityRegistry
from media_mgr.media.models import CONTENT_TYPES
from media_mgr.media.playback import Opened, Playback
from media_mgr.media.variants import Content
from media_mgr.metrics import Metrics

ICY_METAINT = 16000  # Icecast's default
SERVER = "media-mgr"

RateQuery = Annotated[
    int | None, Query(description="resample to this rate (8000, 16000, ...)", json_schema_extra=RATE_SCHEMA)
]


def playback_router(playback: Playback, activity: ActivityRegistry, metrics: Metrics) -> APIRouter:
    """The two stream-URL paths; both serve the same body (looping ``extant`` media is FreeSWITCH's job).

    Install :func:`add_fast_path` on the app too, so the common requests skip FastAPI."""
    router = APIRouter(
        tags=["playback"],
        responses={
            200: audio_response("the whole body (ICY-framed MP3 when asked with Icy-MetaData: 1)"),
            206: audio_response("the range asked for"),
            **error_responses(400, 404, 410, 416, 422, 503),
        },
    )
    streamer = _Streamer(playback, activity, metrics)

    @router.api_route(
        "/single/{token}/{name}", methods=["GET", "HEAD"], summary="Stream media (Stream-Type new)"
    )
    async def single(request: Request, token: str, name: str, rate: RateQuery = None) -> Response:
        return await streamer.answer(request, "single", token, rate)

    @router.api_route("/continuous/{token}/{name}", methods=["GET", "HEAD"], summary="Stream media (extant)")
    async def continuous(request: Request, token: str, name: str, rate: RateQuery = None) -> Response:
        return await streamer.answer(request, "continuous", token, rate)

    return router


class _Streamer:
    """Answers stream URLs from the playback service, each body visible in the activity while it flows."""

    def __init__(self, playback: Playback, activity: ActivityRegistry, metrics: Metrics) -> None:
        self.playback = playback
        self.activity = activity
        self.metrics = metrics

    async def answer(self, request: Request, path: str, token: str, rate: int | None) -> Response:
        """MP3 with ICY when asked, else the body or a range of it."""
        try:
            return await self._answer(request, path, token, rate)
        except MediaMgrError as exc:
            return error_response(exc)

    async def _answer(self, request: Request, path: str, token: str, rate: int | None) -> Response:
        return await self.respond(request, await self.playback.open(token, path, rate))

    async def respond(self, request: Request, opened: Opened) -> Response:
        """The answer for an opened URL: the body, a range of it, or ICY-framed MP3."""
        content = opened.content
        headers = {
            "accept-ranges": "bytes",
            "etag": content.etag,
            "cache-control": "private, max-age=3600",
            "server": SERVER,
        }
        media_type = CONTENT_TYPES[content.format]
        if content.format == "mp3" and request.headers.get("icy-metadata", "").strip() == "1":
            # ICY is a listener's own framing: no length, no ranges.
            headers.update({"icy-metaint": str(ICY_METAINT), "icy-name": opened.item.name, "icy-pub": "0"})
            headers["content-length"] = str(framed_length(content.size, ICY_METAINT, opened.item.name))
            del headers["accept-ranges"]
            if request.method == "HEAD":
                return Response(headers=headers, media_type=media_type)
            body = interleave(self.playback.variants.read(content), ICY_METAINT, opened.item.name)
            return StreamingResponse(self._counted(body, request, opened.item.id, "mp3"),
                                     headers=headers, media_type=media_type)  # fmt: skip
        try:
            wanted = select_range(request.headers.get("range"), request.headers.get("if-range"), content.size,
                                  content.etag)  # fmt: skip
        except RangeNotSatisfiable as exc:
            return error_response(exc, {**headers, "content-range": unsatisfied_content_range(content.size)})
        start, end, status = 0, content.size, 200
        if wanted is not None:
            start, end, status = wanted.start, wanted.end + 1, 206
            headers["content-range"] = wanted.content_range(content.size)
        headers["content-length"] = str(end - start)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=media_type)
        whole = await self.playback.body(opened)
        if whole is not None:  # from memory, in one write: nothing is left to flow for /v1/streams
            self.metrics.served_bytes.labels(content.format).inc(end - start)
            part = whole if (start, end) == (0, len(whole)) else whole[start:end]
            return Response(part, status_code=status, headers=headers, media_type=media_type)
        body = self.playback.variants.read(content, start, end)
        return StreamingResponse(self._counted(body, request, opened.item.id, content.format),
                                 status_code=status, headers=headers, media_type=media_type)  # fmt: skip

    async def _counted(
        self, body: AsyncIterator[bytes], request: Request, media_id: str, kind: str
    ) -> AsyncIterator[bytes]:
        """Pass the body through, visible in /v1/streams and counted in /metrics while it flows."""
        client = f"{request.client.host}:{request.client.port}" if request.client else ""
        entry: Activity = self.activity.start(
            "playback", media_id, client, format=kind, path=request.url.path
        )
        try:
            async for piece in body:
                entry.bytes += len(piece)
                yield piece
        finally:
            self.activity.end(entry)
            self.metrics.served_bytes.labels(kind).inc(entry.bytes)


class _RouteName:
    """What the access middleware reads from ``scope["route"]``: the path template, for metrics."""

    def __init__(self, path: str) -> None:
        self.path = path


_ROUTES = {
    "single": _RouteName("/single/{token}/{name}"),
    "continuous": _RouteName("/continuous/{token}/{name}"),
}


class StreamFastPath:
    """ASGI middleware answering ``GET``/``HEAD /single|continuous/<token>/<name>`` itself."""

    def __init__(self, app: ASGIApp, streamer: _Streamer, metrics: Metrics) -> None:
        self.app = app
        self.streamer = streamer
        self.playback = streamer.playback
        self.access = AccessMiddleware(self._serve, metrics)  # the same access line and metrics
        self._served = {fmt: metrics.served_bytes.labels(fmt) for fmt in CONTENT_TYPES}
        self._heads: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and not scope["query_string"]:
            parts = scope["path"].split("/")
            if (len(parts) == 4 and parts[1] in _ROUTES and parts[2] and parts[3]
                    and not any(name == b"icy-metadata" for name, _ in scope["headers"])):  # fmt: skip
                scope["route"] = _ROUTES[parts[1]]
                await self.access(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        _, path, token, _ = scope["path"].split("/")
        try:
            opened = await self.playback.open(token, path, None)
            plain = scope["method"] == "GET" and not any(
                name in (b"range", b"if-range") for name, _ in scope["headers"]
            )
            whole = await self.playback.body(opened) if plain else None
        except MediaMgrError as exc:
            await error_response(exc)(scope, receive, send)
            return
        if whole is None:  # a range, a HEAD, or a body too large to keep: the general answer
            response = await self.streamer.respond(Request(scope, receive), opened)
            await response(scope, receive, send)
            return
        content = opened.content
        await send({"type": "http.response.start", "status": 200, "headers": self._head(content)})
        await send({"type": "http.response.body", "body": whole})
        self._served[content.format].inc(len(whole))

    def _head(self, content: Content) -> list[tuple[bytes, bytes]]:
        """The 200's header lines for this content, made once (what ``respond`` would send)."""
        key = (content.etag, content.size)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= 4096:
                self._heads.clear()
            head = self._heads[key] = [
                (b"accept-ranges", b"bytes"), (b"etag", content.etag.encode()),
                (b"cache-control", b"private, max-age=3600"), (b"server", SERVER.encode()),
                (b"content-length", str(content.size).encode()),
                (b"content-type", CONTENT_TYPES[content.format].encode()),
            ]  # fmt: skip
        return head


def add_fast_path(app: FastAPI, playback: Playback, activity: ActivityRegistry, metrics: Metrics) -> None:
    """Put :class:`StreamFastPath` in front of the app's routes (outside its access middleware)."""
    app.add_middleware(StreamFastPath, streamer=_Streamer(playback, activity, metrics), metrics=metrics)
