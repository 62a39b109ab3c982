"""The AMQP edge as a component: built from Settings, entered with ``async with``, stopped completely on
exit, and the service's one event publisher (a no-op one when AMQP is off)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Literal

import pytest

from media_mgr.amqp.config import AmqpConfig
from media_mgr.amqp.consumer import AmqpConsumer
from media_mgr.config import Settings
from media_mgr.events import EventPublisher, NoEvents

from amqp_peers import GREETING, GREETING_URL, RESOLVER, Ecallmgr, assert_media_resp, wait_until


@pytest.mark.parametrize(
    ("exchange", "routing_key"), [("kapps", "media_req"), ("whapps", "media_req"), ("callevt", "call.media")]
)
def test_config_from_settings_binds_the_key_of_each_kazoo_era(
    exchange: Literal["kapps", "whapps", "callevt"], routing_key: str
) -> None:
    settings = Settings(
        amqp_url="amqp://guest:guest@127.0.0.1:5672/", amqp_exchange=exchange, amqp_node="media_mgr@here",
        amqp_queue_layout="broadcast", amqp_advertise=True, timeout_amqp_reply=0.5,
    )  # fmt: skip
    config = AmqpConfig.from_settings(settings)
    assert config is not None
    assert (config.exchange, config.routing_key, config.node) == (exchange, routing_key, "media_mgr@here")
    assert (config.queue_layout, config.advertise, config.timeout_reply) == ("broadcast", True, 0.5)


def test_no_broker_url_means_amqp_off() -> None:
    assert AmqpConfig.from_settings(Settings(amqp_url=None)) is None


async def test_async_with_answers_requests_and_leaves_no_task_behind(config: AmqpConfig) -> None:
    async with AmqpConsumer(replace(config, advertise=True, advertise_interval=0.2), RESOLVER) as consumer:
        await wait_until(lambda: consumer.ready, 10, "ready")
        async with Ecallmgr(config.exchange) as ecallmgr:
            request = await ecallmgr.send(GREETING)
            reply, _ = await ecallmgr.reply()
        assert_media_resp(reply, request, consumer.config.node, GREETING_URL)
        assert any(t.get_name() == "amqp-advertise" for t in asyncio.all_tasks())
    assert not consumer.ready
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("amqp-")]


async def test_without_amqp_events_go_nowhere_and_nothing_waits() -> None:
    publisher: EventPublisher = NoEvents()
    assert await publisher.publish("recording.complete", {"Event-Name": "complete"}) is False
