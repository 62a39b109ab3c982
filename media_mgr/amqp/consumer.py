"""The AMQP edge: connection, topology, consuming media_req, publishing replies, heartbeats and events.

One ``AmqpConsumer`` per process. ``start()`` never blocks on the broker: a background task connects with
back-off, then aio-pika's robust connection re-declares exchanges, queues, bindings and consumers after
every broker restart. ``ready`` says whether requests are being consumed right now (for /readyz).

Acknowledgement: manual, only once the reply was confirmed by the broker (batched: ``acks``). An instance
that dies mid-request hands it to another; in flight is bounded by ``prefetch`` (Kazoo's ``no_ack`` is
not). Deliveries are read off the wire by ``frame_reader`` and ``deliveries`` and answered by
``answering`` (the per-request half, late requests included); replies go out through
``ConfirmedPublisher``. Messages that cannot be read, or that carry no Server-ID to reply to, are logged
and rejected without requeue.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import secrets
from collections.abc import Mapping
from typing import Any, Final

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

from media_mgr.amqp import frame_reader, request_age, wire
from media_mgr.amqp.acks import Settlement
from media_mgr.amqp.answering import Answerer
from media_mgr.amqp.config import AmqpConfig
from media_mgr.amqp.deliveries import DeliveryTap
from media_mgr.amqp.media_req import MediaReqHandler, StreamUrlResolver
from media_mgr.amqp.publisher import ConfirmedPublisher
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
        frame_reader.install()
        self.config = config
        self.metrics = metrics or Metrics()
        self.handler = MediaReqHandler(
            resolver,
            node=config.node,
            legacy_error_codes=config.legacy_error_codes,
            timeout=config.timeout_reply,
        )
        self.reply_exchange = config.reply_exchange
        self._answerer = Answerer(self.handler, config, self.metrics, self)
        self._tap: DeliveryTap | None = None
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
        await self._answerer.finish(self.config.timeout_stop)
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
            await self._reply_publisher()  # ready before the first delivery: answered without an await
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
        """Consume on the channel's aiormq channel, its deliveries taken by a :class:`DeliveryTap` as
        they are read and answered by the :class:`Answerer`, settled through this channel's
        :class:`Settlement` (acks batched)."""
        underlay = await channel.get_underlay_channel()
        if not isinstance(underlay, aiormq.Channel):
            raise TypeError(f"not an aiormq channel: {underlay!r}")
        settlement = Settlement(underlay)
        deliver = functools.partial(self._answerer.on_delivery, settlement=settlement)
        if self._tap is not None and self._tap.channel is underlay:
            self._tap.on_delivery = deliver  # consuming again on the same channel (after a cancel)
        else:
            self._tap = DeliveryTap(underlay, self._consumer_tag, deliver)
        underlay.on_consumer_cancel_callbacks.add(self._on_consumer_cancel)
        untapped = functools.partial(self._on_untapped, settlement=settlement)
        await underlay.basic_consume(self.queue_name, untapped, no_ack=False, consumer_tag=self._consumer_tag)
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

    async def _on_untapped(self, message: DeliveredMessage, settlement: Settlement) -> None:
        """A delivery that reached aiormq's callback instead of the tap (none should): answered the same."""
        if isinstance(message.delivery, spec.Basic.Deliver):
            self._answerer.on_delivery(message.delivery, message.header.properties, message.body, settlement)

    def confirmed_now(self) -> ConfirmedPublisher | None:
        """The reply publisher when it can take a reply without an await, else None."""
        confirmed = self._confirmed
        if confirmed is None or confirmed.is_closed or self._targeted is None:
            return None
        return confirmed

    async def publish_reply(self, routing_key: str, body: bytes) -> bool:
        return await self._publish(self._targeted, routing_key, body)

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
                confirmed = await self._reply_publisher()
            await confirmed.publish(exchange.name, routing_key, body)
        except Exception as exc:
            log.warning(
                "amqp publish failed",
                extra={"exchange": exchange.name, "routing_key": routing_key, "error": repr(exc)},
            )
            return False
        return True

    async def _reply_publisher(self) -> ConfirmedPublisher:
        """The publisher on the publishing channel's current aiormq channel, made when that changed."""
        if self._publisher is None:
            raise ConnectionError("no publishing channel")
        async with asyncio.timeout(self.config.timeout_publish):
            channel = await self._publisher.get_underlay_channel()
        if not isinstance(channel, aiormq.Channel):
            raise TypeError(f"not an aiormq channel: {channel!r}")
        confirmed = self._confirmed  # read again: another publish may have made it meanwhile
        if confirmed is None or confirmed.channel is not channel:
            if confirmed is not None:
                confirmed.close()
            timeout = self.config.timeout_publish
            confirmed = self._confirmed = ConfirmedPublisher(channel, wire.CONTENT_TYPE, timeout)
        return confirmed

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
