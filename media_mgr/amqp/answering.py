"""From a media_req delivery to its reply and its settlement: the consumer's per-request half.

A delivery arrives as :class:`~media_mgr.amqp.deliveries.DeliveryTap` cut it off the wire, in the call
that read it. Most requests (a name already known, or a refusal) are decoded, checked, answered and
published right there, with no task and no await; their settlement waits for the broker's confirm of the
reply, as a callback on it. Only a request that needs the database (or TTS) becomes a task, and
``concurrency`` of those resolve at once, the others waiting their turn in arrival order.

Late requests: a request is answered only before its deadline, ``budget`` (ecallmgr's 2 s wait) after it
was published according to its timestamp property, or after it reached us when that stamp cannot be
trusted (``request_age``). Past it, checked when its turn comes and again once resolved, the request is
acknowledged, counted (``media_mgr_amqp_requests_late_total``) and not answered.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pamqp import commands as spec

from media_mgr.amqp import request_age, wire
from media_mgr.amqp.acks import How, Settlement
from media_mgr.amqp.config import AmqpConfig
from media_mgr.amqp.media_req import MediaReqHandler
from media_mgr.amqp.publisher import ConfirmedPublisher
from media_mgr.amqp.wire import MediaReq, Reply
from media_mgr.metrics import Metrics

log = logging.getLogger("media_mgr.amqp")


class Replies(Protocol):
    """Where replies go: the confirmed publisher when it is ready now, else the awaited way there."""

    reply_exchange: str

    def confirmed_now(self) -> ConfirmedPublisher | None: ...

    async def publish_reply(self, routing_key: str, body: bytes) -> bool: ...


@dataclass(slots=True)
class _Asked:
    """One delivery being answered: what its settlement needs to know."""

    settlement: Settlement
    tag: int
    redelivered: bool
    taken: float  # loop time it reached us
    due: float  # loop time past which nobody waits for the answer
    stamped: bool  # its timestamp was trusted


class Answerer:
    """Answers the deliveries of a consumer; ``finish`` lets those under way end (at a stop)."""

    def __init__(
        self, handler: MediaReqHandler, config: AmqpConfig, metrics: Metrics, replies: Replies
    ) -> None:
        self.handler = handler
        self.config = config
        self.metrics = metrics
        self.replies = replies
        self._slots = asyncio.Semaphore(config.concurrency)
        # The broker drops what waited longer than the queue's TTL: an older stamp means clocks disagree.
        self._max_age = config.queue_message_ttl_ms / 1000 + config.budget
        self._inflight: set[asyncio.Future[Any]] = set()

    def on_delivery(
        self,
        deliver: spec.Basic.Deliver,
        props: spec.Basic.Properties,
        body: bytes,
        settlement: Settlement,
    ) -> None:
        """One delivery: decode, validate, answer, then settle (now, or when its reply is confirmed).
        Never raises: it runs inside the connection's frame reader."""
        tag: int = deliver.delivery_tag  # type: ignore[assignment]
        settlement.received(tag)  # first: deliveries are registered in tag order
        try:
            age = request_age.waited(props.timestamp, self._max_age)
            taken = asyncio.get_running_loop().time()
            due = request_age.deadline(taken, self.config.budget, age)
            if age is not None:
                self.metrics.amqp_request_wait_seconds.observe(age)
            asked = _Asked(settlement, tag, bool(deliver.redelivered), taken, due, age is not None)
            how = self._answer_now(asked, props, body)
        except Exception:
            log.exception("media_req delivery failed; dropped")
            how = "reject"
        if how is not None:
            settlement.settle(tag, how)

    async def finish(self, timeout: float) -> None:
        """Wait up to ``timeout`` for what is under way; cancel the rest, which stays unacknowledged
        (the broker hands those requests to another instance)."""
        if not self._inflight:
            return
        _, late = await asyncio.wait(set(self._inflight), timeout=timeout)
        for waiting in late:
            waiting.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    def _answer_now(self, asked: _Asked, props: spec.Basic.Properties, body: bytes) -> How | None:
        """The settlement now, or None when a confirm or a task will settle it."""
        if asked.taken >= asked.due:
            return self._late("queued")
        prepared = self.handler.prepare(body, props.content_type, props.content_encoding)
        if isinstance(prepared, str):
            return prepared
        if isinstance(prepared, MediaReq):
            self._track(asyncio.get_running_loop().create_task(self._resolve(asked, prepared)))
            return None
        server_id, reply = prepared
        confirmed = self.replies.confirmed_now()
        if confirmed is None:
            self._track(asyncio.get_running_loop().create_task(self._send_later(asked, server_id, reply)))
            return None
        try:
            confirm = confirmed.publish(self.replies.reply_exchange, server_id, wire.encode(reply))
        except Exception as exc:
            _publish_failed(self.replies.reply_exchange, server_id, exc)
            return self._unconfirmed(asked)
        self._track(confirm)
        confirm.add_done_callback(functools.partial(self._confirmed, asked, server_id))
        return None

    def _confirmed(self, asked: _Asked, server_id: str, confirm: asyncio.Future[object]) -> None:
        if confirm.cancelled():
            return  # stopping: left unacknowledged
        if (exc := confirm.exception()) is None:
            self.metrics.amqp_reply_seconds.observe(asyncio.get_running_loop().time() - asked.taken)
            how: How = "ack"
        else:
            _publish_failed(self.replies.reply_exchange, server_id, exc)
            how = self._unconfirmed(asked)
        asked.settlement.settle(asked.tag, how)

    async def _resolve(self, asked: _Asked, req: MediaReq) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with self._slots:  # resolving needs the database (or TTS): ``concurrency`` at once
                if loop.time() >= asked.due:
                    how = self._late("queued")
                else:
                    answer = await self.handler.handle(req, asked.due)
                    if answer is None or loop.time() >= asked.due or req.server_id is None:
                        how = self._late("resolving")
                    else:
                        how = await self._send(asked, req.server_id, answer)
        except Exception:
            log.exception("media_req delivery failed; dropped")
            how = "reject"
        asked.settlement.settle(asked.tag, how)

    async def _send_later(self, asked: _Asked, server_id: str, reply: Reply) -> None:
        try:
            how = await self._send(asked, server_id, reply)
        except Exception:
            log.exception("media_req delivery failed; dropped")
            how = "reject"
        asked.settlement.settle(asked.tag, how)

    async def _send(self, asked: _Asked, server_id: str, reply: Reply) -> How:
        """Ack only once the reply was confirmed."""
        if await self.replies.publish_reply(server_id, wire.encode(reply)):
            self.metrics.amqp_reply_seconds.observe(asyncio.get_running_loop().time() - asked.taken)
            return "ack"
        return self._unconfirmed(asked)

    def _unconfirmed(self, asked: _Asked) -> How:
        """Not confirmed, still wanted: let the broker deliver it again (maybe elsewhere). Its stamp
        bounds the retries by the budget; without one, once."""
        if asyncio.get_running_loop().time() < asked.due and (asked.stamped or not asked.redelivered):
            return "requeue"
        return "reject"

    def _late(self, stage: Literal["queued", "resolving"]) -> How:
        """Past ecallmgr's wait: acknowledged (nobody wants it any more), counted, not answered."""
        self.metrics.amqp_requests_late.labels(stage=stage).inc()
        if log.isEnabledFor(logging.INFO):
            log.info("media_req too old to answer", extra={"stage": stage, "budget": self.config.budget})
        return "ack"

    def _track(self, waiting: asyncio.Future[Any]) -> None:
        self._inflight.add(waiting)
        waiting.add_done_callback(self._inflight.discard)


def _publish_failed(exchange: str, routing_key: str, exc: BaseException) -> None:
    log.warning(
        "amqp publish failed", extra={"exchange": exchange, "routing_key": routing_key, "error": repr(exc)}
    )
