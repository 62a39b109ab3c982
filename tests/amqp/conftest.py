"""Fixtures of the AMQP tests: the real broker, a config with per-test names, consumers stopped after."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aio_pika
import pytest

from media_mgr.amqp.config import AmqpConfig
from media_mgr.amqp.consumer import AmqpConsumer
from media_mgr.amqp.media_req import StreamUrlResolver

from amqp_peers import AMQP_URL, RESOLVER, Start, wait_until


@pytest.fixture(scope="session")
async def broker() -> str:
    try:
        connection = await aio_pika.connect(AMQP_URL, timeout=3)
    except Exception as exc:
        # scripts/test starts RabbitMQ; a broker that is not there is a failure, not a skip.
        pytest.fail(f"RabbitMQ not reachable at {AMQP_URL}: {exc!r}")
    await connection.close()
    return AMQP_URL


@pytest.fixture
async def config(broker: str) -> AsyncIterator[AmqpConfig]:
    """A config with per-test request exchange, queue and events exchange, deleted afterwards."""
    run = secrets.token_hex(4)
    cfg = AmqpConfig(
        url=broker,
        exchange=f"media_mgr.test.{run}.kapps",
        queue_name=f"media_mgr.test.{run}.media_req",
        events_exchange=f"media_mgr.test.{run}.events",
        node=f"media_mgr@test-{run}",
        reconnect_interval=0.5,
        backoff_initial=0.1,
        backoff_max=1.0,
        timeout_stop=2.0,
    )
    yield cfg
    with contextlib.suppress(Exception):
        connection = await aio_pika.connect(broker, timeout=3)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(cfg.queue_name)
            await channel.exchange_delete(cfg.exchange)
            await channel.exchange_delete(cfg.events_exchange)


@pytest.fixture
async def start_consumer(config: AmqpConfig) -> AsyncIterator[Start]:
    """Start consumers (``config`` fields overridable) and wait until ready; all stopped at teardown."""
    consumers: list[AmqpConsumer] = []

    async def start(
        wait: bool = True, resolver: StreamUrlResolver = RESOLVER, **changes: Any
    ) -> AmqpConsumer:
        consumer = AmqpConsumer(replace(config, **changes), resolver)
        consumers.append(consumer)
        await consumer.start()
        if wait:
            await wait_until(lambda: consumer.ready, 10, "ready")
        return consumer

    yield start
    for consumer in consumers:
        await consumer.stop()
