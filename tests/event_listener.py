"""Listening to the service's own AMQP events exchange, as an operator's consumer would."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractQueue, ExchangeType

AMQP_URL = os.environ.get("MEDIA_MGR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@dataclass
class EventListener:
    queue: AbstractQueue
    env: dict[str, str]  # what a server needs to publish here (and to use its own media_req queue)

    async def next(self, timeout: float = 20) -> tuple[str, dict[str, Any]]:
        """The next event: (routing key, JSON body)."""
        async with asyncio.timeout(timeout):
            while (message := await self.queue.get(fail=False)) is None:
                await asyncio.sleep(0.1)
        return message.routing_key or "", json.loads(message.body)


@contextlib.asynccontextmanager
async def event_listener(binding: str) -> AsyncIterator[EventListener]:
    """A per-test events exchange and a queue bound to it with ``binding``; deleted afterwards."""
    try:
        connection = await aio_pika.connect(AMQP_URL, timeout=3)
    except Exception as exc:
        pytest.fail(f"RabbitMQ not reachable at {AMQP_URL}: {exc!r}")  # scripts/test starts it
    run = secrets.token_hex(4)
    events_name, req_queue = f"media_mgr.test.{run}.events", f"media_mgr.test.{run}.media_req"
    async with connection:
        channel = await connection.channel()
        events = await channel.declare_exchange(
            events_name, ExchangeType.TOPIC, durable=False, auto_delete=False
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(events, binding)
        env = {"MEDIA_MGR_AMQP_URL": AMQP_URL, "MEDIA_MGR_AMQP_EVENTS_EXCHANGE": events_name,
               "MEDIA_MGR_AMQP_QUEUE_NAME": req_queue}  # fmt: skip
        try:
            yield EventListener(queue, env)
        finally:
            await channel.exchange_delete(events_name)
            await channel.queue_delete(req_queue)
