"""The AMQP edge against the real RabbitMQ: requests shaped exactly like Erlang ecallmgr's, real exchanges.

The requester (``amqp_peers.Ecallmgr``) behaves like ecallmgr's ``kz_amqp_worker``: its own queue bound to
``targeted`` with its Server-ID, a 16-hex Msg-ID per request, replies matched on Msg-ID.
Broker from ``MEDIA_MGR_TEST_AMQP_URL`` (default guest@127.0.0.1:5672); an unreachable broker fails them.
The restart test restarts a private RabbitMQ node of its own (tests/private_services.py).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import shutil
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, ExchangeType
from private_services import PrivateRabbit

from media_mgr.amqp.config import AmqpConfig
from media_mgr.amqp.wire import StreamType
from media_mgr.events import EventPublisher

import amqp_peers
from amqp_peers import (
    ACCOUNT,
    EMPTY,
    GREETING,
    GREETING_URL,
    Ecallmgr,
    Start,
    assert_media_error,
    assert_media_resp,
    broker_queue,
    closed_port,
    tcp_forwarder,
    wait_until,
)

needs_rabbitmqctl = pytest.mark.skipif(
    shutil.which("rabbitmqctl") is None, reason="rabbitmqctl not installed"
)


@pytest.mark.parametrize(
    ("exchange", "routing_key"),
    [("kapps", "media_req"), ("whapps", "media_req"), ("callevt", "call.media")],
)
async def test_ecallmgr_media_req_gets_media_resp_on_kazoos_exchanges(
    start_consumer: Start, exchange: str, routing_key: str
) -> None:
    consumer = await start_consumer(exchange=exchange, routing_key=routing_key)
    async with Ecallmgr(exchange, routing_key) as ecallmgr:
        request = await ecallmgr.send(GREETING)
        reply, message = await ecallmgr.reply()
    assert_media_resp(reply, request, consumer.config.node, GREETING_URL)
    assert message.content_type == "application/json"
    assert not message.content_encoding
    assert message.routing_key == ecallmgr.server_id
    assert message.exchange == "targeted"


async def test_extant_stream_type_is_passed_to_the_resolver(
    start_consumer: Start, config: AmqpConfig
) -> None:
    consumer = await start_consumer()
    async with Ecallmgr(config.exchange) as ecallmgr:
        request = await ecallmgr.send(GREETING, **{"Stream-Type": "extant"})
        reply, _ = await ecallmgr.reply()
    assert_media_resp(reply, request, consumer.config.node, GREETING_URL.replace("/single/", "/continuous/"))


@pytest.mark.parametrize(
    ("media_name", "error_msg"),
    [
        (f"/{ACCOUNT}/doesnotexist", "not_found"),
        (EMPTY, "no_data"),
        ("prompt://nowhere", "invalid_media_name"),
        ("tts://9e107d9d372bb6826bd81d3542a419d6", "not_found"),
    ],
)
async def test_unresolvable_names_get_media_error_other(
    start_consumer: Start, config: AmqpConfig, media_name: str, error_msg: str
) -> None:
    consumer = await start_consumer()
    async with Ecallmgr(config.exchange) as ecallmgr:
        extra = {"Text": "Hello world", "Voice": "female", "Language": "en-us", "Engine": "ispeech"}
        request = await ecallmgr.send(media_name, **(extra if media_name.startswith("tts://") else {}))
        reply, _ = await ecallmgr.reply()
    assert_media_error(reply, request, consumer.config.node, error_msg)


async def test_legacy_error_codes_send_not_found_as_error_code(
    start_consumer: Start, config: AmqpConfig
) -> None:
    await start_consumer(legacy_error_codes=True)
    async with Ecallmgr(config.exchange) as ecallmgr:
        await ecallmgr.send(f"/{ACCOUNT}/doesnotexist")
        reply, _ = await ecallmgr.reply()
    assert reply["Error-Code"] == "not_found"
    assert "Error-Msg" not in reply


@pytest.mark.parametrize(
    ("changes", "error_text"),
    [
        ({"Stream-Type": "store"}, "Stream-Type"),
        ({"Voice": "robot"}, "Voice"),
        ({"App-Version": None}, "App-Version"),
        ({"Event-Name": "media_resp"}, "media_req"),
    ],
)
async def test_invalid_request_gets_media_error_instead_of_silence(
    start_consumer: Start, config: AmqpConfig, changes: dict[str, Any], error_text: str
) -> None:
    consumer = await start_consumer()
    async with Ecallmgr(config.exchange) as ecallmgr:
        request = await ecallmgr.send(GREETING, **changes)
        reply, _ = await ecallmgr.reply()
    assert reply["Event-Name"] == "media_error"
    assert reply["Error-Code"] == "other"
    assert error_text in reply["Error-Msg"]
    assert reply["Msg-ID"] == request["Msg-ID"]
    assert reply["Media-Name"] == request["Media-Name"]
    assert reply["Node"] == consumer.config.node


async def test_msg_reply_id_is_echoed_as_msg_id(start_consumer: Start, config: AmqpConfig) -> None:
    await start_consumer()
    async with Ecallmgr(config.exchange) as ecallmgr:
        await ecallmgr.send(GREETING, **{"Msg-Reply-ID": "00112233aabbccdd"})
        reply, _ = await ecallmgr.reply()
    assert reply["Msg-ID"] == "00112233aabbccdd"


async def test_gzip_encoded_request_is_answered(start_consumer: Start, config: AmqpConfig) -> None:
    consumer = await start_consumer()
    async with Ecallmgr(config.exchange) as ecallmgr:
        request = ecallmgr.media_req(GREETING)
        await ecallmgr.publish(gzip.compress(json.dumps(request).encode()), content_encoding="gzip")
        reply, message = await ecallmgr.reply()
    assert_media_resp(reply, request, consumer.config.node, GREETING_URL)
    assert not message.content_encoding


async def test_bad_deliveries_are_dropped_and_the_next_request_is_answered(
    start_consumer: Start, config: AmqpConfig, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = await start_consumer()
    with caplog.at_level(logging.WARNING, logger="media_mgr.amqp"):
        async with Ecallmgr(config.exchange) as ecallmgr:
            await ecallmgr.publish(b"this is not json")
            await ecallmgr.publish(b"\x1f\x8b garbage", content_encoding="gzip")
            await ecallmgr.publish(b"[" * 50_000)  # past the recursion limit
            await ecallmgr.publish(b"[" * 50_000, content_type="text/plain")
            await ecallmgr.publish(json.dumps(ecallmgr.media_req(GREETING, **{"Server-ID": None})).encode())
            await ecallmgr.publish(json.dumps(ecallmgr.media_req(GREETING, **{"Msg-ID": None})).encode())
            await ecallmgr.publish(
                json.dumps(ecallmgr.media_req("\ud800", **{"Server-ID": "q" * 256})).encode()
            )
            request = await ecallmgr.send(GREETING)
            replies = await ecallmgr.replies_for(1.0)
    assert len(replies) == 1
    assert_media_resp(replies[0], request, consumer.config.node, GREETING_URL)
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    # Each bad delivery is dropped exactly once, with one line: rejected without requeue, no traceback.
    assert len(dropped) == 7, dropped
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert consumer.ready


@pytest.mark.parametrize(
    ("changes", "content_type", "error_msg"),
    [
        (
            {"Media-Name": "\ud800x"},
            "application/json",
            "Media-Name is not valid text (a lone surrogate or a NUL)",
        ),
        (
            {"Media-Name": "/a\x00b"},
            "application/json",
            "Media-Name is not valid text (a lone surrogate or a NUL)",
        ),
        ({"Msg-ID": "\udc00"}, "application/json", "Msg-ID is not valid text (a lone surrogate or a NUL)"),
        ({"Call-ID": "\ud800"}, "application/json", "Call-ID is not valid text (a lone surrogate or a NUL)"),
        ({}, "text/plain", "content type 'text/plain' is not application/json"),
        ({}, None, "content type 'None' is not application/json"),
    ],
    ids=["surrogate-name", "nul-name", "surrogate-msg-id", "surrogate-call-id", "text-plain", "no-type"],
)
async def test_every_message_with_msg_id_and_server_id_is_answered(
    start_consumer: Start,
    config: AmqpConfig,
    caplog: pytest.LogCaptureFixture,
    changes: dict[str, str],
    content_type: str | None,
    error_msg: str,
) -> None:
    """ecallmgr would otherwise wait its 2 s for nothing."""
    consumer = await start_consumer()
    with caplog.at_level(logging.INFO, logger="media_mgr.amqp"):
        async with Ecallmgr(config.exchange) as ecallmgr:
            request = ecallmgr.media_req(GREETING, **changes)
            await ecallmgr.publish(json.dumps(request).encode(), content_type=content_type)
            reply, _ = await ecallmgr.reply(timeout=2)
    assert_media_error(reply, request, consumer.config.node, error_msg)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@needs_rabbitmqctl
async def test_shared_queue_two_consumers_answer_each_request_once(
    start_consumer: Start, config: AmqpConfig
) -> None:
    first = await start_consumer(node=config.node + "-a", prefetch=4)
    second = await start_consumer(node=config.node + "-b", prefetch=4)
    queue = await broker_queue(config.queue_name)
    assert (queue["durable"], queue["auto_delete"], queue["exclusive"]) == (False, False, False)
    async with Ecallmgr(config.exchange) as ecallmgr:
        requests = [await ecallmgr.send(GREETING) for _ in range(20)]
        replies = await ecallmgr.replies_for(3.0)
    assert len(replies) == 20
    assert sorted(r["Msg-ID"] for r in replies) == sorted(r["Msg-ID"] for r in requests)
    assert {r["Node"] for r in replies} == {first.config.node, second.config.node}
    assert all(r["Event-Name"] == "media_resp" for r in replies)


class StuckResolver:
    """Never answers: an instance that hangs or dies in the middle of a request."""

    def __init__(self) -> None:
        self.called = asyncio.Event()

    async def stream_url(
        self, media_name: str, stream_type: StreamType, protocol: str | None, fmt: str | None, **_: object
    ) -> str:
        self.called.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_request_unanswered_by_a_stopping_instance_goes_to_another(
    start_consumer: Start, config: AmqpConfig
) -> None:
    stuck = StuckResolver()
    slow = await start_consumer(
        resolver=stuck, node=config.node + "-slow", timeout_reply=30, timeout_stop=0.3
    )
    async with Ecallmgr(config.exchange) as ecallmgr:
        request = await ecallmgr.send(GREETING)
        await asyncio.wait_for(stuck.called.wait(), 5)
        fast = await start_consumer(node=config.node + "-fast")
        await slow.stop()  # the request was never acked: the broker requeues it
        replies = await ecallmgr.replies_for(2.0)
    assert len(replies) == 1
    assert_media_resp(replies[0], request, fast.config.node, GREETING_URL)


@needs_rabbitmqctl
async def test_broadcast_layout_every_instance_answers(start_consumer: Start, config: AmqpConfig) -> None:
    first = await start_consumer(node=config.node + "-a", queue_layout="broadcast")
    second = await start_consumer(node=config.node + "-b", queue_layout="broadcast")
    assert first.queue_name != second.queue_name
    queue = await broker_queue(first.queue_name)
    assert (queue["durable"], queue["auto_delete"], queue["exclusive"]) == (False, True, False)
    assert {a[0]: a[2] for a in queue["arguments"]} == {"x-max-length": 100, "x-message-ttl": 60000}
    async with Ecallmgr(config.exchange) as ecallmgr:
        requests = [await ecallmgr.send(GREETING) for _ in range(3)]
        replies = await ecallmgr.replies_for(2.0)
    assert len(replies) == 6
    for request in requests:
        answered_by = sorted(r["Node"] for r in replies if r["Msg-ID"] == request["Msg-ID"])
        assert answered_by == [first.config.node, second.config.node]


@pytest.fixture(scope="module")
def private_broker() -> Iterator[PrivateRabbit]:
    """A RabbitMQ node of the test's own (tests/private_services.py): restarting it disturbs no one."""
    with PrivateRabbit() as broker:
        yield broker


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["shared", "broadcast"])
async def test_consumer_answers_again_after_a_broker_restart(
    start_consumer: Start, config: AmqpConfig, layout: str, private_broker: PrivateRabbit,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(amqp_peers, "AMQP_URL", private_broker.url)  # Ecallmgr talks to the private node
    consumer = await start_consumer(queue_layout=layout, url=private_broker.url)
    async with Ecallmgr(config.exchange) as ecallmgr:
        await ecallmgr.send(GREETING)
        assert (await ecallmgr.reply())[0]["Event-Name"] == "media_resp"
    started = time.monotonic()
    try:
        await asyncio.to_thread(private_broker.stop_app)
        await wait_until(lambda: not consumer.ready, 10, "unready while the broker is down")
    finally:
        await asyncio.to_thread(private_broker.start_app)
    await wait_until(lambda: consumer.ready, 20, "ready again after the restart")
    async with Ecallmgr(config.exchange) as ecallmgr:
        request = await ecallmgr.send(GREETING)
        reply, _ = await ecallmgr.reply()
    assert_media_resp(reply, request, consumer.config.node, GREETING_URL)
    assert time.monotonic() - started < 60


async def test_start_with_the_broker_down_returns_at_once_and_connects_later(
    start_consumer: Start, config: AmqpConfig
) -> None:
    port = closed_port()
    started = time.monotonic()
    consumer = await start_consumer(wait=False, url=f"amqp://guest:guest@127.0.0.1:{port}/")
    assert time.monotonic() - started < 0.5
    await asyncio.sleep(1.5)  # several failed attempts, with back-off
    assert not consumer.ready
    assert await consumer.publish("test.event", {"Event-Category": "test", "Event-Name": "x"}) is False
    broker = urlsplit(config.url)
    async with tcp_forwarder(port, (broker.hostname or "127.0.0.1", broker.port or 5672)):
        await wait_until(lambda: consumer.ready, 10, "ready once the broker is reachable")
        async with Ecallmgr(config.exchange) as ecallmgr:
            request = await ecallmgr.send(GREETING)
            reply, _ = await ecallmgr.reply()
        assert_media_resp(reply, request, consumer.config.node, GREETING_URL)
        await consumer.stop()
    assert not consumer.ready


async def test_stop_while_the_broker_is_unreachable_is_clean(start_consumer: Start) -> None:
    consumer = await start_consumer(wait=False, url=f"amqp://guest:guest@127.0.0.1:{closed_port()}/")
    await asyncio.sleep(0.3)
    await asyncio.wait_for(consumer.stop(), 3)
    await asyncio.wait_for(consumer.stop(), 3)
    assert not consumer.ready


async def test_advertise_heartbeats_name_media_mgr_on_the_nodes_exchange(
    start_consumer: Start, broker: str
) -> None:
    connection = await aio_pika.connect(broker, timeout=5)
    async with connection:
        channel = await connection.channel()
        nodes = await channel.declare_exchange("nodes", ExchangeType.FANOUT, durable=False, auto_delete=False)
        queue = await channel.declare_queue("", exclusive=True)
        await queue.bind(nodes)
        consumer = await start_consumer(advertise=True, advertise_interval=0.3)
        heartbeats: list[AbstractIncomingMessage] = []
        deadline = time.monotonic() + 5
        while len(heartbeats) < 2 and time.monotonic() < deadline:
            message = await queue.get(no_ack=True, fail=False, timeout=5)
            if message is None:
                await asyncio.sleep(0.05)
            elif json.loads(message.body).get("Node") == consumer.config.node:
                heartbeats.append(message)
    assert len(heartbeats) == 2
    body = json.loads(heartbeats[0].body)
    assert heartbeats[0].content_type == "application/json"
    assert body["Event-Category"] == "nodes"
    assert body["Event-Name"] == "advertise"
    assert body["WhApps"] == {"media_mgr": {}}
    assert body["Expires"] == "300"
    assert body["App-Name"] == "media_srv"
    assert {"App-Version", "Msg-ID"} <= body.keys()


async def test_publish_event_goes_to_the_events_exchange(start_consumer: Start, config: AmqpConfig) -> None:
    consumer = await start_consumer()
    connection = await aio_pika.connect(config.url, timeout=5)
    async with connection:
        channel = await connection.channel()
        events = await channel.declare_exchange(
            config.events_exchange, ExchangeType.TOPIC, durable=False, auto_delete=False
        )
        queue = await channel.declare_queue("", exclusive=True)
        await queue.bind(events, "recording.#")
        body = {
            "Event-Category": "recording",
            "Event-Name": "complete",
            "Recording-ID": "r1",
            "Call-ID": None,
        }
        publisher: EventPublisher = consumer  # the service's one publisher while AMQP is on
        assert await publisher.publish("recording.complete", body)
        message = await queue.get(no_ack=True, timeout=5)
    event = json.loads(message.body)
    assert message.routing_key == "recording.complete"
    assert message.content_type == "application/json"
    assert event["Event-Category"] == "recording"
    assert event["Event-Name"] == "complete"
    assert event["Recording-ID"] == "r1"
    assert event["Node"] == consumer.config.node
    assert "Call-ID" not in event
