"""The media_req handler: a valid request in, exactly one reply out (Kazoo's ``media_listener``).

It knows nothing of AMQP connections, only of the wire shapes and of a resolver that turns a Media-Name
into a Stream-URL. Unlike Kazoo's listener it never crashes on input and never lets a fault of ours look
like "not found": user errors become their own Error-Msg (``amqp_reason`` from the error table in
``media_mgr.errors``), anything else ``internal_error``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final, Literal, Protocol, overload

from media_mgr.amqp import wire
from media_mgr.amqp.wire import MediaReq, Reply, StreamType, WireError
from media_mgr.errors import MediaMgrError
from media_mgr.logs import request_id
from media_mgr.tts.speech import TtsOptions

log = logging.getLogger("media_mgr.amqp")

INTERNAL_ERROR: Final = "internal_error"
TIMEOUT: Final = "timeout"


class StreamUrlResolver(Protocol):
    """Media-Name -> Stream-URL. Raises ``NotFound``, ``NoData`` or ``InvalidRequest`` for user errors."""

    async def stream_url(
        self,
        media_name: str,
        stream_type: StreamType,
        protocol: str | None,
        fmt: str | None,
        *,
        tts: TtsOptions | None = None,
    ) -> str: ...


class KeptStreamUrls(Protocol):
    """A resolver that can also answer from memory, synchronously: the URL, or None when it cannot."""

    def stream_url_kept(
        self, media_name: str, stream_type: StreamType, protocol: str | None, fmt: str | None
    ) -> str | None: ...


class MediaReqHandler:
    """Answers media_req messages; ``timeout`` keeps each answer inside ecallmgr's 2 s wait."""

    def __init__(
        self,
        resolver: StreamUrlResolver,
        *,
        node: str,
        legacy_error_codes: bool = False,
        timeout: float = 1.5,
    ) -> None:
        self.resolver = resolver
        self.node = node
        self.legacy_error_codes = legacy_error_codes
        self.timeout = timeout
        # Answered from memory when the resolver can: no timer, no await (most requests, at load).
        kept = getattr(resolver, "stream_url_kept", None)
        self._kept: KeptStreamUrls | None = resolver if callable(kept) else None  # type: ignore[assignment]

    @overload
    async def handle(self, req: MediaReq) -> Reply: ...
    @overload
    async def handle(self, req: MediaReq, deadline: float | None) -> Reply | None: ...

    async def handle(self, req: MediaReq, deadline: float | None = None) -> Reply | None:
        """``media_resp`` with the URL, or ``media_error``; never raises (except cancellation).

        ``deadline`` (event-loop time) is when ecallmgr stops waiting: None comes back when it passes
        before the answer is ready, since an answer after it would only confuse a collector that moved on.
        """
        # Memory first (again, after ``prepare``): a request that waited for a resolving slot may find
        # its name kept by now, by an earlier request for the same name.
        if (kept := self.handle_kept(req)) is not None:
            return kept
        extra = self._extra(req)
        timeout, late = self.timeout, False
        if deadline is not None:
            left = deadline - asyncio.get_running_loop().time()
            timeout, late = min(timeout, left), left <= self.timeout
        try:
            async with asyncio.timeout(timeout):
                tts = TtsOptions(req.text, req.voice, req.language, req.engine)
                url = await self.resolver.stream_url(
                    req.media_name, req.stream_type, req.protocol, req.format, tts=tts
                )
            return self._answered(req, url)
        except MediaMgrError as exc:
            return self._refused(req, exc)
        except TimeoutError:
            if late:
                return None
            log.warning("media_req not resolved in time", extra={**extra, "timeout": self.timeout})
            return self.error(req, TIMEOUT)
        except Exception:
            log.exception("media_req failed", extra=extra)
            return self.error(req, INTERNAL_ERROR)

    def prepare(
        self, body: bytes, content_type: str | None, content_encoding: str | None
    ) -> Literal["reject"] | tuple[str, Reply] | MediaReq:
        """A delivery's body, as far as it goes without an await: ``"reject"`` (logged: nobody to answer),
        the routing key and reply (a refusal, or an answer from memory), or the request to :meth:`handle`."""
        try:
            decoded = wire.decode_body(body, content_type, content_encoding)
            request_id.set(wire.correlation_id(decoded))
            req = wire.parse_media_req(decoded)
        except wire.DecodeError as exc:
            err = wire.refusal(str(exc), exc.body) if exc.body is not None else None
            if err is None or err.msg_id is None or err.server_id is None:
                return _drop("undecodable message dropped", error=str(exc), size=len(body))
            return err.server_id, self.reject(err)
        except wire.WireError as err:
            if err.msg_id is None or err.server_id is None:
                return _drop("invalid media_req dropped: nowhere to reply", reason=err.reason)
            return err.server_id, self.reject(err)
        if req.server_id is None:
            return _drop("media_req dropped: no Server-ID to reply to", msg_id=req.msg_id)
        kept = self.handle_kept(req)
        return req if kept is None else (req.server_id, kept)

    def handle_kept(self, req: MediaReq) -> Reply | None:
        """The reply when the resolver can give it from memory right now (no await, no timer), else
        None: :meth:`handle` it. Never raises."""
        if self._kept is None:
            return None
        try:
            url = self._kept.stream_url_kept(req.media_name, req.stream_type, req.protocol, req.format)
            return None if url is None else self._answered(req, url)
        except MediaMgrError as exc:
            return self._refused(req, exc)
        except Exception:
            log.exception("media_req failed", extra=self._extra(req))
            return self.error(req, INTERNAL_ERROR)

    def _answered(self, req: MediaReq, url: str) -> Reply:
        reply = wire.media_resp(req, url, self.node)
        if log.isEnabledFor(logging.INFO):
            log.info("media_req answered", extra={**self._extra(req), "stream_url": url})
        return reply

    def _refused(self, req: MediaReq, exc: MediaMgrError) -> Reply:
        log.info("media_req refused", extra={**self._extra(req), "error": exc.code, "detail": exc.detail})
        return self.error(req, exc.amqp_reason)

    @staticmethod
    def _extra(req: MediaReq) -> dict[str, str | None]:
        return {"msg_id": req.msg_id, "call_id": req.call_id, "media_name": req.media_name}

    def reject(self, err: WireError) -> Reply:
        """The ``media_error`` for a request that failed validation (Kazoo would stay silent)."""
        log.warning(
            "invalid media_req",
            extra={"msg_id": err.msg_id, "media_name": err.media_name, "reason": err.reason},
        )
        return self.error(err, err.reason)

    def error(self, req: MediaReq | WireError, reason: str) -> Reply:
        return wire.media_error(req, reason, self.node, legacy_error_codes=self.legacy_error_codes)


def _drop(what: str, **extra: object) -> Literal["reject"]:
    log.warning(what, extra=extra)
    return "reject"
