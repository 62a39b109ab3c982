"""Recording events on the service's AMQP events exchange: ``recording.complete`` when a source ends
(``recording.interrupted`` from crash recovery is checked in tests/recording/test_ingest.py)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import ExchangeType
from shout_peers import ShoutUrl, create_recording, push_and_wait, raw_mp3, start_shout_server

AMQP_URL = os.environ.get("MEDIA_MGR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


async def test_recording_complete_is_published_with_the_recording(database_url: str, tmp_path: Path) -> None:
    try:
        connection = await aio_pika.connect(AMQP_URL, timeout=3)
    except Exception as exc:
        pytest.fail(f"RabbitMQ not reachable at {AMQP_URL}: {exc!r}")  # scripts/test starts it
    run = secrets.token_hex(4)
    events_name = f"media_mgr.test.{run}.events"
    async with connection:
        channel = await connection.channel()
        events = await channel.declare_exchange(events_name, ExchangeType.TOPIC, durable=False, auto_delete=False)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(events, "recording.#")
        srv, _ = start_shout_server(
            database_url, tmp_path / "srv", MEDIA_MGR_AMQP_URL=AMQP_URL, MEDIA_MGR_AMQP_EVENTS_EXCHANGE=events_name,
            MEDIA_MGR_AMQP_QUEUE_NAME=f"media_mgr.test.{run}.media_req",
        )  # fmt: skip
        try:
            sent = raw_mp3(tmp_path / "e.mp3", seconds=1.0)
            rec = create_recording(srv)
            await asyncio.sleep(1.0)  # let the consumer connect and declare its exchanges
            await asyncio.to_thread(push_and_wait, ShoutUrl.parse(rec["shout_url"]), tmp_path / "e.mp3", pace=False)
            async with asyncio.timeout(20):
                message = await queue.get(timeout=20, fail=False)
                while message is None:
                    await asyncio.sleep(0.2)
                    message = await queue.get(timeout=20, fail=False)
            body = json.loads(message.body)
            assert message.routing_key == "recording.complete"
            assert (body["Event-Category"], body["Event-Name"]) == ("recording", "complete")
            assert body["Recording-ID"] == rec["id"] and body["Media-ID"] == rec["id"]
            assert body["Size"] == len(sent) and body["End-Reason"] == "eof" and body["Duration-MS"] > 0
        finally:
            srv.stop()
            await channel.exchange_delete(events_name)
            await channel.queue_delete(f"media_mgr.test.{run}.media_req")
