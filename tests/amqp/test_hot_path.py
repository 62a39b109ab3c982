"""The media_req hot path on the real RabbitMQ: answers from memory take no slot and no resolver await;
replies published from pre-built frames arrive exactly as aiormq would send them, and their confirms
(ack, nack, none at all, a lost channel) settle each publish as aiormq's own would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiormq
import pytest
from aiormq.abc import DeliveredMessage

from media_mgr.amqp.config import AmqpConfig
from media_mgr.amqp.publisher import ConfirmedPublisher
from media_mgr.amqp.wire import StreamType
from media_mgr.errors import NoData

from amqp_peers import (
    AMQP_URL,
    EMPTY,
    GREETING,
    GREETING_URL,
    DictResolver,
    Ecallmgr,
    Start,
    assert_media_error,
    assert_media_resp,
)

HELD = "/3a63acb1cc1fbd5fb5fa6b3d39b48b7e/99999999999999999999999999999999"
HELD_URL = "http://apps1.example.com:24517/single/held/held.wav"


class KeptResolver(DictResolver):
    """Knows GREETING (and that EMPTY has no content) from memory; anything else needs ``stream_url``,
    where HELD waits until released. Counts what reached ``stream_url``."""

    def __init__(self) -> None:
        super().__init__({GREETING: GREETING_URL, EMPTY: None, HELD: HELD_URL})
        self.resolved: list[str] = []
        self.release = asyncio.Event()

    def stream_url_kept(
        self, media_name: str, stream_type: StreamType, protocol: str | None, fmt: str | None
    ) -> str | None:
        if media_name == EMPTY:
            raise NoData("no content")
        return GREETING_URL if media_name == GREETING else None

    async def stream_url(
        self, media_name: str, stream_type: StreamType, protocol: str | None, fmt: str | None, **kw: object
    ) -> str:
        self.resolved.append(media_name)
        if media_name == HELD:
            await self.release.wait()
        return await super().stream_url(media_name, stream_type, protocol, fmt, **kw)


async def test_a_name_known_in_memory_is_answered_while_every_resolving_slot_is_taken(
    start_consumer: Start, config: AmqpConfig
) -> None:
    resolver = KeptResolver()
    consumer = await start_consumer(resolver=resolver, concurrency=1, budget=60.0, timeout_reply=60.0)
    async with Ecallmgr(config.exchange) as ecallmgr:
        held = await ecallmgr.send(HELD)  # takes the only slot until released
        known = await ecallmgr.send(GREETING)
        empty = await ecallmgr.send(EMPTY)
        replies = {r["Msg-ID"]: r for r in [(await ecallmgr.reply(timeout=10))[0] for _ in range(2)]}
        assert_media_resp(replies[known["Msg-ID"]], known, consumer.config.node, GREETING_URL)
        assert_media_error(replies[empty["Msg-ID"]], empty, consumer.config.node, "no_data")
        assert resolver.resolved == [HELD]  # the known names never reached the resolver's await
        resolver.release.set()
        reply, _ = await ecallmgr.reply(timeout=10)
        assert_media_resp(reply, held, consumer.config.node, HELD_URL)


@contextlib.asynccontextmanager
async def confirmed_channel(timeout: float = 5.0) -> AsyncIterator[tuple[aiormq.Channel, ConfirmedPublisher]]:
    connection = await aiormq.connect(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        assert isinstance(channel, aiormq.Channel)
        yield channel, ConfirmedPublisher(channel, "application/json", timeout)
    finally:
        await connection.close()


async def test_published_frames_arrive_as_sent_in_order_with_every_confirm(config: AmqpConfig) -> None:
    # Bodies past the broker's frame size (128 KiB) go in several body frames; many publishes in one
    # loop turn leave in one write, a full write queue delays them but keeps their order.
    async with confirmed_channel() as (channel, publisher):
        queue = (await channel.queue_declare("", exclusive=True)).queue
        assert queue is not None
        got: asyncio.Queue[DeliveredMessage] = asyncio.Queue()
        await channel.basic_consume(queue, got.put, no_ack=True)
        bodies = [b'{"n":%d}' % n for n in range(300)] + [b"x" * 300_000, "é".encode() * 70_000]
        writes = channel.connection.write_queue
        confirms = []
        for n, body in enumerate(bodies):
            if n == 150:
                with contextlib.suppress(asyncio.QueueFull):
                    while True:  # fill the connection's write queue: the rest must wait behind it
                        writes.put_nowait(aiormq.abc.ChannelFrame(payload=b"", should_close=False))
            confirms.append(publisher.publish("", queue, body))
        assert all(isinstance(ack, aiormq.spec.Basic.Ack) for ack in await asyncio.gather(*confirms))
        for body in bodies:
            message = await asyncio.wait_for(got.get(), 10)
            assert message.body == body
            assert message.header.properties.content_type == "application/json"


async def test_a_nack_and_a_lost_channel_fail_their_publishes() -> None:
    async with confirmed_channel() as (channel, publisher):
        full = (await channel.queue_declare("", exclusive=True, arguments={
            "x-max-length": 1, "x-overflow": "reject-publish"})).queue  # fmt: skip
        assert full is not None
        assert isinstance(await publisher.publish("", full, b"{}"), aiormq.spec.Basic.Ack)
        with pytest.raises(aiormq.exceptions.DeliveryError):
            await publisher.publish("", full, b"{}")  # the broker nacks what the full queue refuses
        lost = publisher.publish("no such exchange, closes the channel", "x", b"{}")
        with pytest.raises(aiormq.exceptions.AMQPError):
            await asyncio.wait_for(lost, 10)
        assert publisher.is_closed
        with pytest.raises(ConnectionError):
            publisher.publish("", full, b"{}")


async def test_a_confirm_that_never_comes_fails_the_publish_after_the_timeout() -> None:
    # The broker's answers stop reaching us (a proxy that drops them from now on): the publish fails
    # with TimeoutError after ``timeout`` instead of waiting for ever.
    silent = asyncio.Event()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, muted: bool) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if not (muted and silent.is_set()):
                    writer.write(data)
                    await writer.drain()
        writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection("127.0.0.1", 5672)
        await asyncio.gather(pipe(client_r, broker_w, False), pipe(broker_r, client_w, True))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        connection = await aiormq.connect(AMQP_URL.replace(":5672", f":{port}"))
        try:
            channel = await connection.channel(publisher_confirms=True)
            assert isinstance(channel, aiormq.Channel)
            publisher = ConfirmedPublisher(channel, "application/json", 0.4)
            queue = (await channel.queue_declare("", exclusive=True)).queue
            assert queue is not None
            silent.set()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(publisher.publish("", queue, b"{}"), 10)
            publisher.close()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2)
