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

import asyncio
import time
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from media_mgr.audio.icy import framed_length, interleave
from media_mgr.audio.info import AudioFormat
from media_mgr.errors import MediaMgrError, RangeNotSatisfiable
from media_mgr.http.access import AccessMiddleware
from media_mgr.http.body_files import BodyFiles
from media_mgr.http.connection_limits import Answer
from media_mgr.http.errors import error_response
from media_mgr.http.openapi import RATE_SCHEMA, audio_response, error_responses
from media_mgr.http.ranges import select_range, unsatisfied_content_range
from media_mgr.media.activity import Activity, ActivityRegistry
from media_mgr.media.cache import MISS
from media_mgr.media.models import CONTENT_TYPES
from media_mgr.media.playback import Opened, Playback, body_key
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

    def __init__(self, app: ASGIApp, streamer: _Streamer, metrics: Metrics, answers: StreamAnswers) -> None:
        self.app = app
        self.streamer = streamer
        self.playback = streamer.playback
        self.access = AccessMiddleware(self._serve, metrics)  # the same access line and metrics
        self.answers = answers
        answers.access = self.access
        self._served = answers.served

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
        began = self.answers.generations()
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
        head = self.answers.head(content)
        await send({"type": "http.response.start", "status": 200, "headers": head.lines})
        await send({"type": "http.response.body", "body": whole})
        self._served[content.format].inc(len(whole))
        if began is not None and began == self.answers.generations():
            self.answers.remember(scope["raw_path"], path, opened, head, began)


@dataclass(frozen=True, slots=True)
class _Head:
    """A 200's header lines for one content: for ASGI, and as bytes for the protocol's own write."""

    lines: list[tuple[bytes, bytes]]
    raw: bytes


@dataclass(frozen=True, slots=True)
class _Known:
    """A URL answered from memory, with what must still hold to answer it again without a look."""

    generations: tuple[int, int]  # the playback cache's and the revocations' when it was opened
    expires: int
    nonce: bytes
    body: Hashable  # the body's key in the playback cache (it stays under the cache's byte bound)
    head: _Head
    route: str
    format: AudioFormat


class StreamAnswers:
    """Stream URLs answered by the HTTP protocol itself, before ASGI (``http.connection_limits``).

    A URL the ASGI path answered from memory is remembered with the playback cache's and the
    revocations' generations; while neither moved (no notification, no reset, the listener live),
    its token has not expired, its nonce is not revoked and its body is still cached, the same
    answer is written again at once: no task, no ASGI messages, the same bytes, access line and
    metrics. Anything else (a miss, a range, HEAD, a query, a header the answer depends on) goes
    the ASGI way, which remembers it again.
    """

    def __init__(self, playback: Playback, metrics: Metrics) -> None:
        self.playback = playback
        self.cache = playback.catalog.cache
        self.revoked = playback.revoked
        self.access: AccessMiddleware | None = None  # set by StreamFastPath, which fills the memory
        self.served = {fmt: metrics.served_bytes.labels(fmt) for fmt in CONTENT_TYPES}
        self._known: dict[bytes, _Known] = {}
        self._heads: dict[tuple[str, int], _Head] = {}
        self._files = BodyFiles(self.cache.max_bytes // 4)
        self._times: dict[str, list[float]] = {
            route.path: [] for route in _ROUTES.values()
        }  # not yet counted
        self._bytes = dict.fromkeys(CONTENT_TYPES, 0)  # served, not yet counted
        self._counting = False  # a call of _count is due in this loop turn

    def generations(self) -> tuple[int, int] | None:
        """What an answer depends on, or None while the cache or the revocations are not live."""
        if not (self.cache.live and self.revoked.loaded):
            return None
        return self.cache.generation, self.revoked.generation

    def remember(
        self, raw_path: bytes, path: str, opened: Opened, head: _Head, began: tuple[int, int]
    ) -> None:
        if b"%" in raw_path:
            return  # its path was decoded: the protocol would not find it by its raw bytes
        if len(self._known) >= KNOWN_URLS:
            self._known.clear()
        claims = opened.claims
        self._known[raw_path] = _Known(began, claims.expires, claims.nonce, body_key(opened.content), head,
                                       _ROUTES[path].path, opened.content.format)  # fmt: skip

    headers = frozenset({b"range", b"if-range", b"icy-metadata"})
    """The request headers an answer depends on: the protocol leaves requests with any of them to ASGI."""

    def respond(self, url: bytes, request_id: bytes, client: str, defaults: bytes,
                keep_alive: bool) -> Answer | None:  # fmt: skip
        """The buffers answering this GET, or None: let ASGI answer it."""
        known = self._known.get(url)
        if known is None or self.access is None:
            return None
        started = time.perf_counter()
        cache, revoked = self.cache, self.revoked
        if (not (cache.live and revoked.loaded)  # what generations() says, without a call
                or known.generations != (cache.generation, revoked.generation)
                or revoked.known(known.nonce) is not False
                or self.playback.clock() >= known.expires):  # fmt: skip
            del self._known[url]
            return None
        body = cache.get(known.body)
        if body is MISS:
            return None
        file = self._files.get(known.body, body)
        rid = self.access.request_id_from(request_id)
        head = b"".join((b"HTTP/1.1 200 OK\r\n", defaults, known.head.raw, b"x-request-id: ", rid.encode(),
                         b"\r\n\r\n" if keep_alive else b"\r\nconnection: close\r\n\r\n"))  # fmt: skip
        elapsed = time.perf_counter() - started
        self._times[known.route].append(elapsed)
        self._bytes[known.format] += len(body)
        if not self._counting:
            self._counting = True
            asyncio.get_running_loop().call_soon(self._count)
        self.access.log_answered(rid, "GET", url, 200, elapsed, client)
        return Answer(head, body, file)

    def _count(self) -> None:
        """Count this loop turn's answers in the metrics at once. Whoever reads them (``/metrics``)
        is read in a later turn, so sees every answer written before; a counter increment a request
        (three, with the histogram's) was about 5 % of the server's CPU for them."""
        self._counting = False
        if self.access is None:
            return
        for route, times in self._times.items():
            if times:
                self.access.count_answered(route, 200, times)
                times.clear()
        for fmt, size in self._bytes.items():
            if size:
                self.served[fmt].inc(size)
                self._bytes[fmt] = 0

    def close(self) -> None:
        """Close the body files (the server has stopped)."""
        self._count()
        self._files.clear()

    def head(self, content: Content) -> _Head:
        """The 200's header lines for this content, made once (what ``respond`` would send)."""
        key = (content.etag, content.size)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= KNOWN_URLS:
                self._heads.clear()
            lines = [
                (b"accept-ranges", b"bytes"), (b"etag", content.etag.encode()),
                (b"cache-control", b"private, max-age=3600"), (b"server", SERVER.encode()),
                (b"content-length", str(content.size).encode()),
                (b"content-type", CONTENT_TYPES[content.format].encode()),
            ]  # fmt: skip
            head = self._heads[key] = _Head(lines, b"".join(b"%s: %s\r\n" % line for line in lines))
        return head


KNOWN_URLS = 8192
"""URLs (and header sets) the protocol answers itself, at most; all are forgotten when full."""


def add_fast_path(app: FastAPI, playback: Playback, activity: ActivityRegistry, metrics: Metrics) -> None:
    """Put :class:`StreamFastPath` in front of the app's routes (outside its access middleware), and
    its :class:`StreamAnswers` in ``app.state.stream_answers`` for the HTTP protocol (http.server)."""
    answers = StreamAnswers(playback, metrics)
    app.state.stream_answers = answers
    app.add_middleware(StreamFastPath, streamer=_Streamer(playback, activity, metrics), metrics=metrics,
                       answers=answers)  # fmt: skip
