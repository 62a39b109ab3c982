"""The far ends of the AMQP tests: a requester shaped like Erlang ecallmgr, a resolver standing in for the
domain, the broker's ctl, a TCP forwarder."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, ExchangeType

from media_mgr.amqp.consumer import AmqpConsumer
from media_mgr.amqp.wire import StreamType
from media_mgr.errors import NoData, NotFound
from media_mgr.media.names import TtsRef, parse_media_name

AMQP_URL = os.environ.get("MEDIA_MGR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
Start = Callable[..., Awaitable[AmqpConsumer]]
"""The ``start_consumer`` fixture: a consumer on the test's config (fields overridable), started."""

ACCOUNT = "3a63acb1cc1fbd5fb5fa6b3d39b48b7e"
GREETING = f"/{ACCOUNT}/0123456789abcdef0123456789abcdef"
EMPTY = f"/{ACCOUNT}/00000000000000000000000000000000"
GREETING_URL = "http://apps1.example.com:24517/single/tok3n/greeting.mp3"
UNIX_EPOCH_IN_GREGORIAN = 62_167_219_200


class OutgoingStamp(datetime.datetime):
    """An AMQP timestamp property carrying any 64-bit value: pamqp encodes ``int(value.timestamp())``."""

    value: int

    def timestamp(self) -> float:
        return self.value  # an int: pamqp packs it as the property's unsigned 64 bits, unchanged


def kazoo_timestamp(age: float = 0.0) -> OutgoingStamp:
    """The timestamp kz_amqp_util:basic_publish/5 puts on every message (Kazoo 4.3, 5.x):
    ``kz_time:now_us()``, microseconds since year 0 (Gregorian), not AMQP's seconds since 1970.
    ``age`` makes it that many seconds old."""
    stamp = OutgoingStamp.now(datetime.UTC)
    stamp.value = time.time_ns() // 1000 - int(age * 1_000_000) + UNIX_EPOCH_IN_GREGORIAN * 1_000_000
    return stamp


class DictResolver:
    """The resolver Protocol over a dict: name -> URL, or None for a record without content."""

    def __init__(self, media: dict[str, str | None]) -> None:
        self.media = media

    async def stream_url(
        self, media_name: str, stream_type: StreamType, protocol: str | None, fmt: str | None, **_: object
    ) -> str:
        if isinstance(parse_media_name(media_name), TtsRef):
            raise NotFound("tts is not built yet")
        if media_name not in self.media:
            raise NotFound(f"no media {media_name}")
        url = self.media[media_name]
        if url is None:
            raise NoData(f"{media_name} has no content")
        return url.replace("/single/", "/continuous/") if stream_type == "extant" else url


RESOLVER = DictResolver({GREETING: GREETING_URL, EMPTY: None})


def assert_media_resp(reply: dict[str, Any], request: dict[str, Any], node: str, url: str) -> None:
    assert reply == {
        "App-Name": "media_srv",
        "App-Version": "4.0.0",
        "Event-Category": "media",
        "Event-Name": "media_resp",
        "Media-Name": request["Media-Name"],
        "Msg-ID": request["Msg-ID"],
        "Node": node,
        "Stream-URL": url,
    }


def assert_media_error(reply: dict[str, Any], request: dict[str, Any], node: str, error_msg: str) -> None:
    assert reply == {
        "App-Name": "media_srv",
        "App-Version": "4.0.0",
        "Error-Code": "other",
        "Error-Msg": error_msg,
        "Event-Category": "media",
        "Event-Name": "media_error",
        "Media-Name": request["Media-Name"],
        "Msg-ID": request["Msg-ID"],
        "Node": node,
    }


class Ecallmgr:
    """A requester shaped like Erlang ecallmgr's ``kz_amqp_worker`` (reference 1.6 and 1.7).

    Its own exclusive queue bound to ``targeted`` with its Server-ID, requests with every key ecallmgr
    sends and a 16-hex Msg-ID, replies read back as JSON.
    """

    def __init__(
        self, exchange: str = "kapps", routing_key: str = "media_req", confirms: bool = True
    ) -> None:
        self.confirms = confirms  # False: publish without waiting for the broker (a load generator)
        self.exchange_name = exchange
        self.routing_key = routing_key
        pid = secrets.randbelow(30000)
        self.server_id = f"ecallmgr@fs1.example.com-<0.{pid}.0>-{secrets.token_hex(4)}"
        self.replies: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self.exchange: AbstractExchange
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Ecallmgr:
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        self._stack.push_async_callback(connection.close)
        channel = await connection.channel(publisher_confirms=self.confirms)
        # "" is the broker's default exchange: routing key = one server's queue name, so requests
        # reach only that server and not every instance on the shared broker's ``kapps``.
        self.exchange = (
            channel.default_exchange
            if self.exchange_name == ""
            else await channel.declare_exchange(
                self.exchange_name, ExchangeType.TOPIC, durable=False, auto_delete=False
            )
        )
        targeted = await channel.declare_exchange(
            "targeted", ExchangeType.DIRECT, durable=False, auto_delete=False
        )
        # Kazoo names the queue after the Server-ID; the client library refuses "<" in queue names,
        # so this one gets a tamer name and is bound with the exact Server-ID, which is what routes.
        queue = await channel.declare_queue(f"test.ecallmgr.{secrets.token_hex(4)}", exclusive=True)
        await queue.bind(targeted, self.server_id)
        await queue.consume(self.replies.put, no_ack=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def media_req(self, media_name: str, **extra: Any) -> dict[str, Any]:
        call_id = f"{secrets.token_hex(4)}-51a2-4b7c-9d0e-{secrets.token_hex(6)}"
        body: dict[str, Any] = {
            "App-Name": "ecallmgr",
            "App-Version": "4.0.0",
            "Call-ID": call_id,
            "Event-Category": "media",
            "Event-Name": "media_req",
            "Media-Name": media_name,
            "Msg-ID": secrets.token_hex(8),
            "Node": "ecallmgr@fs1.example.com",
            "Server-ID": self.server_id,
            "Stream-Type": "new",
            "System-Log-ID": call_id,
        }
        body.update(extra)
        return {key: value for key, value in body.items() if value is not None}

    async def send(self, media_name: str, **extra: Any) -> dict[str, Any]:
        return await self.send_aged(media_name, 0.0, **extra)

    async def send_aged(self, media_name: str, age: float, **extra: Any) -> dict[str, Any]:
        """Publish a media_req whose timestamp property is ``age`` seconds old (a request that waited)."""
        body = self.media_req(media_name, **extra)
        await self.publish(json.dumps(body).encode(), timestamp=kazoo_timestamp(age))
        return body

    async def publish(
        self,
        payload: bytes,
        content_type: str | None = "application/json",
        content_encoding: str | None = None,
        timestamp: datetime.datetime | None = None,
    ) -> None:
        """As kz_amqp_util publishes: content type, and the timestamp property (now unless given)."""
        message = aio_pika.Message(
            payload,
            content_type=content_type,
            content_encoding=content_encoding,
            timestamp=timestamp or kazoo_timestamp(),
        )
        await self.exchange.publish(message, routing_key=self.routing_key)

    async def reply(self, timeout: float = 5.0) -> tuple[dict[str, Any], AbstractIncomingMessage]:
        message = await asyncio.wait_for(self.replies.get(), timeout)
        return json.loads(message.body), message

    async def replies_for(self, seconds: float) -> list[dict[str, Any]]:
        """Every reply that arrives within ``seconds``."""
        out = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = await asyncio.wait_for(self.replies.get(), left)
            except TimeoutError:
                break
            out.append(json.loads(message.body))
        return out


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout} s")
        await asyncio.sleep(0.05)


async def rabbitmqctl(*args: str, timeout: float = 60.0) -> str:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        raise
    assert process.returncode == 0, out.decode(errors="replace")
    return out.decode()


async def broker_queue(name: str) -> dict[str, Any]:
    out = await rabbitmqctl("list_queues", "-q", "name", "durable", "auto_delete", "exclusive", "arguments",
                            "--formatter", "json")  # fmt: skip
    queues: list[dict[str, Any]] = json.loads(out)
    return next(queue for queue in queues if queue["name"] == name)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def tcp_forwarder(port: int, target: tuple[str, int]) -> AsyncIterator[None]:
    """A TCP proxy on ``port`` to the broker: the broker "appearing" at the consumer's address."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        broker_reader, broker_writer = await asyncio.open_connection(*target)
        await asyncio.gather(pipe(client_reader, broker_writer), pipe(broker_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        yield
