"""The AMQP edge: connection, topology, consuming media_req, publishing replies, heartbeats and events.

One ``AmqpConsumer`` per process. ``start()`` never blocks on the broker: a background task connects with
back-off, then aio-pika's robust connection re-declares exchanges, queues, bindings and consumers after
every broker restart. ``ready`` says whether requests are being consumed right now (for /readyz).

Acknowledgement: manual, only once the reply was confirmed by the broker (batched: ``acks``). An instance
that dies mid-request hands it to another; in flight is bounded by ``prefetch`` (Kazoo's ``no_ack`` is
not). Each delivery is its own task (aiormq's), so replies await their confirms side by side. A
request the resolver answers from memory (a known name) or that is refused before resolving takes no
slot and no await until its publish; ``concurrency`` of those that need the database (or TTS) resolve
at once, the others wait their turn in arrival order. Replies go out through ``ConfirmedPublisher``.
Messages that cannot be read, or that carry no Server-ID to reply to, are logged and rejected without
requeue.

Late requests: a request is answered only before its deadline, ``budget`` (ecallmgr's 2 s wait) after it
was published according to its timestamp property, or after it reached us when that stamp cannot be
trusted (``request_age``). Past it, checked when its turn comes and again once resolved, the request is
acknowledged, counted (``media_mgr_amqp_requests_late_total``) and not answered.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import secrets
from collections.abc import Mapping
from typing import Any, Final, Literal

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractExchange,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    ExchangeType,
)
from aiormq import spec
from aiormq.abc import DeliveredMessage
from yarl import URL

from media_mgr.amqp import request_age, wire
from media_mgr.amqp.acks import How, Settlement
from media_mgr.amqp.config import AmqpConfig
from media_mgr.amqp.media_req import MediaReqHandler, StreamUrlResolver
from media_mgr.amqp.publisher import ConfirmedPublisher
from media_mgr.amqp.wire import MediaReq
from media_mgr.lifecycle import Component
from media_mgr.metrics import Metrics
from media_mgr.tasks import TaskSet

log = logging.getLogger("media_mgr.amqp")

NODES_EXCHANGE: Final = "nodes"


class AmqpConsumer(Component):
    """Consumes media_req, answers on ``targeted``; optional ``nodes`` heartbeats; publishes events.

    ``async with AmqpConsumer(config, resolver) as amqp:`` starts it (without waiting for the broker)
    and stops it on exit; it is the service's ``EventPublisher`` while AMQP is on.
    """

    def __init__(
        self, config: AmqpConfig, resolver: StreamUrlResolver, metrics: Metrics | None = None
    ) -> None:
        request_age.install()  # Kazoo's timestamps would otherwise break every delivery
        self.config = config
        self.metrics = metrics or Metrics()
        self._slots = asyncio.Semaphore(config.concurrency)
        # The broker drops what waited longer than the queue's TTL: an older stamp means clocks disagree.
        self._max_age = config.queue_message_ttl_ms / 1000 + config.budget
        self.handler = MediaReqHandler(
            resolver,
            node=config.node,
            legacy_error_codes=config.legacy_error_codes,
            timeout=config.timeout_reply,
        )
        if config.queue_layout == "shared":
            self.queue_name = config.queue_name
        else:
            # Kazoo names its anonymous queues <node>-<pid>-<hex>; a client-chosen name survives reconnects.
            node = re.sub(r"[^a-zA-Z0-9\-_.:@]", "_", config.node)
            self.queue_name = f"{node}-media_req-{secrets.token_hex(4)}"
        self._connection: AbstractRobustConnection | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag = f"media_mgr.{secrets.token_hex(8)}"
        self._settlement: Settlement | None = None  # the consuming channel's, replaced on reopen
        self._channel: AbstractRobustChannel | None = None  # the consuming channel
        self._requests: AbstractExchange | None = None
        self._publisher: AbstractRobustChannel | None = None  # every exchange below is declared on it
        self._confirmed: ConfirmedPublisher | None = None  # publishes on its current underlay channel
        self._targeted: AbstractExchange | None = None
        self._events: AbstractExchange | None = None
        self._nodes: AbstractExchange | None = None
        self._consuming = False
        self._stopping = asyncio.Event()
        self._tasks = TaskSet("amqp", log)
        self._inflight: set[asyncio.Task[Any]] = set()

    @property
    def ready(self) -> bool:
        """Connected and consuming right now."""
        conn = self._connection
        return self._consuming and conn is not None and not conn.is_closed and conn.connected.is_set()

    async def start(self) -> None:
        """Begin connecting in the background; returns at once, whether or not the broker is up."""
        if len(self._tasks) or self._connection is not None:
            return
        self._stopping.clear()
        self._tasks = TaskSet("amqp", log)
        self._tasks.spawn(self._run(), name="amqp-connect")

    async def stop(self) -> None:
        """Stop consuming, let requests in flight finish (up to ``timeout_stop``, then cancel), then close."""
        self._stopping.set()
        await self._tasks.stop(self.config.timeout_stop)
        if self._queue is not None and self.ready:
            try:
                async with asyncio.timeout(self.config.timeout_stop):
                    await self._queue.cancel(self._consumer_tag)
            except Exception as exc:
                log.debug("consumer cancel failed", extra={"error": repr(exc)})
        self._consuming = False
        if self._inflight:
            _, late = await asyncio.wait(set(self._inflight), timeout=self.config.timeout_stop)
            for task in late:
                task.cancel()  # unacked: the broker hands the request to another instance
            await asyncio.gather(*late, return_exceptions=True)
        if self._settlement is not None:
            await self._settlement.drain()  # the last batch of acks on the wire before the close
        connection, self._connection = self._connection, None
        self._queue = self._targeted = self._events = self._nodes = None
        self._publisher = None
        if self._confirmed is not None:
            self._confirmed.close()
            self._confirmed = None
        self._settlement = None
        if connection is not None:
            try:
                async with asyncio.timeout(self.config.timeout_stop):
                    await connection.close()
            except Exception as exc:
                log.warning("amqp close failed", extra={"error": repr(exc)})

    async def publish(self, routing_key: str, body: Mapping[str, Any]) -> bool:
        """Publish one of the service's events on ``events_exchange``; best effort, never queued.

        Returns False (and logs) when the broker is not reachable right now: events must not hold up
        the work they describe.
        """
        message = wire.event(body, self.config.node)
        exchange = self._events
        if exchange is None or not self.ready:
            log.info("event not published: amqp not ready", extra={"routing_key": routing_key})
            return False
        return await self._publish(exchange, routing_key, wire.encode(message))

    # -- connection -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        """Connect with exponential back-off until it works; robust reconnection takes over from there."""
        delay = self.config.backoff_initial
        while not self._stopping.is_set():
            try:
                await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "amqp broker not reachable; retrying",
                    extra={"url": self.config.safe_url, "error": repr(exc), "retry_in": delay},
                )
                try:
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
                except TimeoutError:
                    pass
                delay = min(delay * 2, self.config.backoff_max)
                continue
            log.info(
                "amqp consuming",
                extra={"url": self.config.safe_url, "queue": self.queue_name, "node": self.config.node},
            )
            if self.config.advertise:
                self._tasks.spawn(self._advertise(), name="amqp-advertise")
            return

    async def _connect(self) -> None:
        """``aio_pika.connect_robust`` kept in hand, so a stop during an attempt closes what it opened."""
        cfg = self.config
        connection = aio_pika.RobustConnection(
            URL(cfg.url),
            client_properties={"connection_name": f"{cfg.node} media_req"},
            reconnect_interval=cfg.reconnect_interval,
        )
        try:
            await connection.connect(timeout=cfg.timeout_connect)
            await self._declare(connection)
        except BaseException:
            await asyncio.shield(self._close_quietly(connection))
            raise
        self._connection = connection

    async def _declare(self, connection: AbstractRobustConnection) -> None:
        """Checklist 1: ``kapps`` topic and ``targeted`` direct, both durable=False and auto_delete=False."""
        cfg = self.config
        async with asyncio.timeout(cfg.timeout_connect):
            channel: AbstractRobustChannel = await connection.channel(publisher_confirms=False)
            await channel.set_qos(prefetch_count=cfg.prefetch)
            requests = await channel.declare_exchange(
                cfg.exchange, ExchangeType.TOPIC, durable=False, auto_delete=False
            )
            publisher = self._publisher = await connection.channel(publisher_confirms=True)
            self._targeted = await publisher.declare_exchange(
                cfg.reply_exchange, ExchangeType.DIRECT, durable=False, auto_delete=False
            )
            self._events = await publisher.declare_exchange(
                cfg.events_exchange, ExchangeType.TOPIC, durable=False, auto_delete=False
            )
            if cfg.advertise:
                self._nodes = await publisher.declare_exchange(
                    NODES_EXCHANGE, ExchangeType.FANOUT, durable=False, auto_delete=False
                )
            queue = await channel.declare_queue(
                self.queue_name,
                durable=False,
                auto_delete=cfg.queue_layout == "broadcast",
                arguments={
                    "x-max-length": cfg.queue_max_length,
                    "x-message-ttl": cfg.queue_message_ttl_ms,
                },
            )
            await queue.bind(requests, cfg.routing_key)
            self._channel, self._requests = channel, requests
            channel.close_callbacks.add(self._on_channel_closed)
            channel.reopen_callbacks.add(self._on_channel_reopened)
            await self._consume(channel)
        self._queue = queue
        self._consuming = True

    def _on_channel_closed(self, _channel: object, exc: BaseException | None = None) -> None:
        if self._consuming and not self._stopping.is_set():
            log.warning("amqp channel lost; waiting for the broker", extra={"error": repr(exc)})
        self._consuming = False

    async def _on_channel_reopened(self, channel: AbstractRobustChannel | None) -> None:
        # aio-pika restored the queue and its binding; the consumer is ours (aiormq's) to restore.
        if channel is None:
            return
        await self._consume(channel)
        log.info("amqp consuming again", extra={"queue": self.queue_name})
        self._consuming = True

    async def _consume(self, channel: AbstractRobustChannel) -> None:
        """Consume with aiormq directly: each delivery reaches ``_on_message`` as aiormq read it, with
        no aio-pika ``IncomingMessage`` built around it, and is settled through this channel's
        :class:`Settlement` (acks batched)."""
        underlay = await channel.get_underlay_channel()
        settlement = Settlement(underlay)
        deliver = functools.partial(self._on_message, settlement=settlement)
        underlay.on_consumer_cancel_callbacks.add(self._on_consumer_cancel)
        await underlay.basic_consume(self.queue_name, deliver, no_ack=False, consumer_tag=self._consumer_tag)
        self._settlement = settlement

    def _on_consumer_cancel(self, frame: spec.Basic.Cancel) -> None:
        """The broker cancelled our consumer (the queue was deleted): declare it again and consume."""
        if frame.consumer_tag != self._consumer_tag or self._stopping.is_set():
            return
        log.warning("media_req consumer cancelled by the broker; declaring the queue again")
        self._consuming = False
        self._tasks.spawn(self._resume(), name="amqp-resume")

    async def _resume(self) -> None:
        queue, channel, requests = self._queue, self._channel, self._requests
        if queue is not None and channel is not None and requests is not None:
            await queue.declare()
            await queue.bind(requests, self.config.routing_key)
            await self._consume(channel)
            self._consuming = True

    @staticmethod
    async def _close_quietly(connection: AbstractRobustConnection) -> None:
        try:
            await connection.close()
        except Exception as exc:
            log.debug("amqp close after failed connect", extra={"error": repr(exc)})

    # -- messages -------------------------------------------------------------------------------------

    async def _on_message(self, message: DeliveredMessage, settlement: Settlement) -> None:
        """One delivery: decode, validate, answer, then settle. Never raises into aiormq."""
        tag: int = message.delivery.delivery_tag  # type: ignore[union-attr,assignment]
        settlement.received(tag)  # first, before any await: deliveries are registered in tag order
        props = message.header.properties
        loop = asyncio.get_running_loop()
        age = request_age.waited(props.timestamp, self._max_age)
        taken = loop.time()
        due = request_age.deadline(taken, self.config.budget, age)
        if age is not None:
            self.metrics.amqp_request_wait_seconds.observe(age)
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            how = await self._answer(message, props, taken, due, age is not None)
        except Exception:
            log.exception("media_req delivery failed; dropped")
            how = "reject"
        finally:
            if task is not None:
                self._inflight.discard(task)
        settlement.settle(tag, how)

    async def _answer(
        self, message: DeliveredMessage, props: spec.Basic.Properties, taken: float, due: float, stamped: bool
    ) -> How:
        """What to do with the delivery once this returns: ack only when its reply was confirmed (or it
        is too late to want one)."""
        loop = asyncio.get_running_loop()
        if loop.time() >= due:
            return self._late("queued")
        prepared = self.handler.prepare(message.body, props.content_type, props.content_encoding)
        if isinstance(prepared, str):
            return prepared
        if isinstance(prepared, MediaReq):
            async with self._slots:  # resolving needs the database (or TTS): ``concurrency`` at once
                if loop.time() >= due:
                    return self._late("queued")
                answer = await self.handler.handle(prepared, due)
            if answer is None or loop.time() >= due or prepared.server_id is None:
                return self._late("resolving")
            server_id, reply = prepared.server_id, answer
        else:
            server_id, reply = prepared
        if await self._publish(self._targeted, server_id, wire.encode(reply)):
            self.metrics.amqp_reply_seconds.observe(loop.time() - taken)
            return "ack"
        redelivered = bool(getattr(message.delivery, "redelivered", False))
        if loop.time() < due and (stamped or not redelivered):
            # Not confirmed, still wanted: let the broker deliver it again (maybe elsewhere). Its stamp
            # bounds the retries by the budget; without one, once.
            return "requeue"
        return "reject"

    def _late(self, stage: Literal["queued", "resolving"]) -> How:
        """Past ecallmgr's wait: acknowledged (nobody wants it any more), counted, not answered."""
        self.metrics.amqp_requests_late.labels(stage=stage).inc()
        if log.isEnabledFor(logging.INFO):
            log.info("media_req too old to answer", extra={"stage": stage, "budget": self.config.budget})
        return "ack"

    async def _publish(self, exchange: AbstractExchange | None, routing_key: str, body: bytes) -> bool:
        """Publish with a broker confirm, within ``timeout_publish``; False when that did not happen.

        Through :class:`ConfirmedPublisher` on the publishing channel's current aiormq channel (a new
        one after every reopen): pre-built frames, one timeout sweep, a nack or channel loss fails it.
        """
        if exchange is None or self._publisher is None:
            return False
        try:
            confirmed = self._confirmed
            if confirmed is None or confirmed.is_closed:
                async with asyncio.timeout(self.config.timeout_publish):
                    channel = await self._publisher.get_underlay_channel()
                if not isinstance(channel, aiormq.Channel):
                    raise TypeError(f"not an aiormq channel: {channel!r}")
                if confirmed is None or confirmed.channel is not channel:
                    if confirmed is not None:
                        confirmed.close()
                    confirmed = self._confirmed = ConfirmedPublisher(
                        channel, wire.CONTENT_TYPE, self.config.timeout_publish
                    )
            await confirmed.publish(exchange.name, routing_key, body)
        except Exception as exc:
            log.warning(
                "amqp publish failed",
                extra={"exchange": exchange.name, "routing_key": routing_key, "error": repr(exc)},
            )
            return False
        return True

    # -- heartbeats -----------------------------------------------------------------------------------

    async def _advertise(self) -> None:
        """``nodes`` heartbeats so ecallmgr counts this instance as a ``media_mgr`` (checklist 23)."""
        interval = self.config.advertise_interval
        expires_ms = int(interval * 1000)
        while True:
            if self.ready:
                body = wire.encode(wire.advertise(self.config.node, expires_ms))
                await self._publish(self._nodes, "", body)
            await asyncio.sleep(interval)
