"""media_req under load and trouble, on a real broker: bursts, requests past ecallmgr's 2 s, a lost connection.

Every request is sent as ecallmgr's kz_amqp_worker sends it, AMQP timestamp property included
(``amqp_peers.Ecallmgr``). The connection test cuts the consumer's connection on a RabbitMQ node of its own
(tests/private_services.py), never on the machine's broker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Iterator
from typing import Any

import aio_pika
import pytest
from private_services import PrivateRabbit

from media_mgr.amqp.config import AmqpConfig
from media_mgr.amqp.consumer import AmqpConsumer
from media_mgr.amqp.wire import StreamType

import amqp_peers
from amqp_peers import GREETING, GREETING_URL, DictResolver, Ecallmgr, Start, assert_media_resp, wait_until

ACCOUNT = "3a63acb1cc1fbd5fb5fa6b3d39b48b7e"
NAMES = {f"/{ACCOUNT}/{i:032x}": f"http://apps1.example.com:24517/single/t{i}/m{i}.wav" for i in range(20)}


def late(consumer: AmqpConsumer, stage: str) -> float:
    value = consumer.metrics.registry.get_sample_value("media_mgr_amqp_requests_late_total", {"stage": stage})
    return value or 0.0


async def queue_depth(url: str, queue: str) -> int:
    connection = await aio_pika.connect(url, timeout=5)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


async def test_a_burst_from_many_requesters_is_answered_each_to_its_own_queue_and_msg_id(
    start_consumer: Start, config: AmqpConfig
) -> None:
    # A budget no machine load can exhaust: this is about where each answer goes, not when.
    consumer = await start_consumer(resolver=DictResolver(dict(NAMES)), concurrency=16, budget=60.0)
    names = list(NAMES)
    async with Ecallmgr(config.exchange) as a, Ecallmgr(config.exchange) as b, Ecallmgr(config.exchange) as c:
        peers = (a, b, c)

        async def burst(peer: Ecallmgr, offset: int) -> list[dict[str, Any]]:
            sends = [peer.send(names[(offset + i) % len(names)]) for i in range(300)]
            return list(await asyncio.gather(*sends))

        sent = await asyncio.gather(*(burst(peer, n) for n, peer in enumerate(peers)))
        for peer, requests in zip(peers, sent, strict=True):
            replies: list[dict[str, Any]] = []
            while len(replies) < len(requests):
                replies.append((await peer.reply(timeout=20))[0])
            by_id = {r["Msg-ID"]: r for r in replies}
            assert len(by_id) == len(requests)  # no duplicate, none missing, none meant for another peer
            for request in requests:
                assert_media_resp(
                    by_id[request["Msg-ID"]], request, consumer.config.node, NAMES[request["Media-Name"]]
                )
            assert peer.replies.empty()
    assert late(consumer, "queued") == late(consumer, "resolving") == 0


class HeldResolver(DictResolver):
    """Holds one name until released: a slow request (a long TTS synthesis) ahead of all the others."""

    def __init__(self, media: dict[str, str | None], held: str) -> None:
        super().__init__(media)
        self.held = held
        self.release = asyncio.Event()

    async def stream_url(
        self, media_name: str, stream_type: StreamType, protocol: str | None, fmt: str | None, **kw: object
    ) -> str:
        if media_name == self.held:
            await self.release.wait()
        return await super().stream_url(media_name, stream_type, protocol, fmt, **kw)


async def test_a_request_still_resolving_does_not_hold_back_the_acks_of_those_after_it(
    start_consumer: Start, config: AmqpConfig
) -> None:
    # Acks go in batches up to the newest delivery whose predecessors are all settled; an unsettled
    # one at the head must not keep the rest unacknowledged until the prefetch (300) stops deliveries.
    held = f"/{ACCOUNT}/{99:032x}"
    held_url = "http://apps1.example.com:24517/single/held/held.wav"
    resolver = HeldResolver({**NAMES, held: held_url}, held)
    consumer = await start_consumer(  # no deadline of ours may answer the held one meanwhile
        resolver=resolver, prefetch=300, concurrency=16, budget=60.0, timeout_reply=60.0,
        queue_max_length=1000,
    )  # fmt: skip
    names = list(NAMES)
    async with Ecallmgr(config.exchange) as ecallmgr:
        first = await ecallmgr.send(held)
        requests = [await ecallmgr.send(names[i % len(names)]) for i in range(700)]
        replies = [(await ecallmgr.reply(timeout=20))[0] for _ in requests]
        assert {r["Msg-ID"] for r in replies} == {r["Msg-ID"] for r in requests}
        resolver.release.set()
        reply, _ = await ecallmgr.reply(timeout=20)
        assert_media_resp(reply, first, consumer.config.node, held_url)
    await consumer.stop()
    assert await queue_depth(config.url, config.queue_name) == 0  # every one acknowledged, none back


async def test_a_request_older_than_the_budget_is_acknowledged_counted_and_not_answered(
    start_consumer: Start, config: AmqpConfig
) -> None:
    consumer = await start_consumer()
    async with Ecallmgr(config.exchange) as ecallmgr:
        await ecallmgr.send_aged(GREETING, 2.5)  # ecallmgr gave up on it half a second ago
        fresh = await ecallmgr.send_aged(GREETING, 1.0)
        reply, _ = await ecallmgr.reply()
        assert_media_resp(reply, fresh, consumer.config.node, GREETING_URL)
        assert await ecallmgr.replies_for(0.5) == []
    assert late(consumer, "queued") == 1
    await consumer.stop()
    assert await queue_depth(config.url, config.queue_name) == 0  # acknowledged, not left to come back


def sampled(consumer: AmqpConsumer, name: str, suffix: str) -> float:
    return consumer.metrics.registry.get_sample_value(f"media_mgr_amqp_{name}_seconds_{suffix}") or 0.0


async def test_where_a_request_s_time_went_is_in_metrics_broker_wait_and_reply_apart(
    start_consumer: Start, config: AmqpConfig
) -> None:
    """The wait before we took a request (from ecallmgr's stamp) and our time to a confirmed reply are
    two histograms: a request that waited 1.5 s shows it in the first; one past the budget is waited
    for but never replied to; one whose stamp cannot be trusted is not counted as waiting."""
    consumer = await start_consumer()
    async with Ecallmgr(config.exchange) as ecallmgr:
        sent = [await ecallmgr.send(GREETING) for _ in range(5)]
        sent.append(await ecallmgr.send_aged(GREETING, 1.5))
        await ecallmgr.send_aged(GREETING, 2.5)  # late: acknowledged, not answered
        sent.append(await ecallmgr.send_aged(GREETING, 3600))  # a clock that is off: no wait to speak of
        replies = [(await ecallmgr.reply())[0]["Msg-ID"] for _ in sent]
    assert sorted(replies) == sorted(r["Msg-ID"] for r in sent)
    await wait_until(lambda: late(consumer, "queued") == 1, 10, "the late one counted")
    assert sampled(consumer, "request_wait", "count") == 7  # five fresh, 1.5 s, 2.5 s
    assert 4.0 <= sampled(consumer, "request_wait", "sum") < 4.0 + 7 * 1.0
    assert sampled(consumer, "reply", "count") == 7  # five fresh, the 1.5 s one, the untrusted one
    assert 0 < sampled(consumer, "reply", "sum") < 7 * 2.0


class SlowResolver:
    """Answers after ``delay`` seconds: a lookup that outlasts what is left of the budget."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def stream_url(
        self, media_name: str, stream_type: StreamType, protocol: str | None, fmt: str | None, **_: object
    ) -> str:
        await asyncio.sleep(self.delay)
        return GREETING_URL


async def test_a_request_whose_budget_runs_out_while_resolving_is_not_answered(
    start_consumer: Start, config: AmqpConfig
) -> None:
    consumer = await start_consumer(resolver=SlowResolver(1.0), timeout_reply=1.5)
    async with Ecallmgr(config.exchange) as ecallmgr:
        await ecallmgr.send_aged(GREETING, 1.5)  # half a second left: less than the lookup takes
        assert await ecallmgr.replies_for(1.5) == []
    assert late(consumer, "resolving") == 1
    assert late(consumer, "queued") == 0


async def test_a_stamp_the_clocks_cannot_explain_counts_the_budget_from_arrival(
    start_consumer: Start, config: AmqpConfig
) -> None:
    """An hour old is older than the queue keeps anything: the publisher's clock is off, not the request."""
    consumer = await start_consumer()
    async with Ecallmgr(config.exchange) as ecallmgr:
        old = await ecallmgr.send_aged(GREETING, 3600)
        ahead = await ecallmgr.send_aged(GREETING, -3600)
        replies = {r["Msg-ID"]: r for r in await ecallmgr.replies_for(1.5)}
    assert_media_resp(replies[old["Msg-ID"]], old, consumer.config.node, GREETING_URL)
    assert_media_resp(replies[ahead["Msg-ID"]], ahead, consumer.config.node, GREETING_URL)
    assert late(consumer, "queued") == 0


async def test_a_request_without_a_timestamp_is_answered(start_consumer: Start, config: AmqpConfig) -> None:
    """Kazoo 3.x and older sent no timestamp property."""
    consumer = await start_consumer()
    async with Ecallmgr(config.exchange) as ecallmgr:
        request = ecallmgr.media_req(GREETING)
        message = aio_pika.Message(json.dumps(request).encode(), content_type="application/json")
        await ecallmgr.exchange.publish(message, routing_key=ecallmgr.routing_key)
        reply, _ = await ecallmgr.reply()
    assert_media_resp(reply, request, consumer.config.node, GREETING_URL)


# -- the connection lost mid-burst ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_broker() -> Iterator[PrivateRabbit]:
    with PrivateRabbit() as broker:
        yield broker


def close_consumer_connection(broker: PrivateRabbit, connection_name: str) -> None:
    """``rabbitmqctl close_connection`` on the consumer's connection only: the requester's stays up."""
    listing = broker.ctl("list_connections", "-q", "--no-table-headers", "pid", "client_properties")
    pids = [line.split()[0] for line in listing.splitlines() if connection_name in line]
    assert pids, f"no connection named {connection_name!r} in {listing}"
    for pid in pids:
        broker.ctl("close_connection", pid, "test: connection lost mid-burst")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("rabbitmq-server") is None, reason="rabbitmq-server not installed")
async def test_connection_lost_mid_burst_loses_nothing_and_answers_every_request_after_reconnect(
    start_consumer: Start,
    config: AmqpConfig,
    private_broker: PrivateRabbit,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(amqp_peers, "AMQP_URL", private_broker.url)
    # Slow enough that many requests are mid-flight when the connection goes; a budget that no
    # machine load can exhaust, and a queue long enough to take back every unacknowledged request (at
    # Kazoo's 100 the broker drops the oldest beyond it, by design), so only the reconnection decides
    # whether they are answered.
    consumer = await start_consumer(
        url=private_broker.url, resolver=SlowResolver(0.02), prefetch=100, concurrency=8, budget=60.0,
        queue_max_length=1000,
    )  # fmt: skip
    name = f"{consumer.config.node} media_req"
    with caplog.at_level(logging.WARNING, logger="media_mgr.amqp"):
        async with Ecallmgr(config.exchange) as ecallmgr:
            requests = [await ecallmgr.send(GREETING) for _ in range(400)]
            replies = [(await ecallmgr.reply(timeout=20))[0] for _ in range(50)]
            await asyncio.to_thread(close_consumer_connection, private_broker, name)
            # The reconnection may be over before rabbitmqctl returns: watch for the loss in the log.
            await wait_until(lambda: any("channel lost" in r.getMessage() for r in caplog.records), 20,
                             "told the channel was lost")  # fmt: skip
            await wait_until(lambda: consumer.ready, 30, "consuming again after reconnecting")
            wanted = {r["Msg-ID"] for r in requests}
            while not wanted <= {r["Msg-ID"] for r in replies}:
                replies.append((await ecallmgr.reply(timeout=30))[0])
            replies += await ecallmgr.replies_for(1.0)
    assert {r["Msg-ID"] for r in replies} == wanted
    for (
        reply
    ) in replies:  # some requests may be answered twice (replied, then the ack was lost): never wrongly
        request = next(r for r in requests if r["Msg-ID"] == reply["Msg-ID"])
        assert_media_resp(reply, request, consumer.config.node, GREETING_URL)
    assert late(consumer, "queued") == late(consumer, "resolving") == 0
    await consumer.stop()
    assert await queue_depth(private_broker.url, config.queue_name) == 0


async def test_a_queue_deleted_under_the_consumer_is_declared_again_and_consumed(
    start_consumer: Start, config: AmqpConfig, caplog: pytest.LogCaptureFixture
) -> None:
    # The broker cancels the consumer of a deleted queue; the service must not sit there "ready".
    consumer = await start_consumer()
    with caplog.at_level(logging.WARNING, logger="media_mgr.amqp"):
        async with Ecallmgr(config.exchange) as ecallmgr:
            connection = await aio_pika.connect(config.url, timeout=5)
            async with connection:
                channel = await connection.channel()
                await channel.queue_delete(config.queue_name)
            await wait_until(lambda: any("cancelled by the broker" in r.getMessage() for r in caplog.records),
                             20, "told the consumer was cancelled")  # fmt: skip
            await wait_until(lambda: consumer.ready, 30, "consuming again")
            request = await ecallmgr.send(GREETING)  # a request published now reaches the new queue
            reply, _ = await ecallmgr.reply(timeout=20)
    assert_media_resp(reply, request, consumer.config.node, GREETING_URL)
