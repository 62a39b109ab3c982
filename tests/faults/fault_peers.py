"""Peers of the fault tests: an ecallmgr-shaped requester on any broker, a server with AMQP on its own
queue, JSON log lines read back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aio_pika
import httpx
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection, ExchangeType
from private_services import PrivatePostgres

from servers import RunningServer, start_server


class Requester:
    """Sends media_req on Kazoo's ``kapps`` exchange and reads replies from its own queue bound to
    ``targeted`` with its Server-ID, as Erlang ecallmgr's ``kz_amqp_worker`` does. Reconnects (robust)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.server_id = f"ecallmgr@fault.test-<0.{secrets.randbelow(30000)}.0>-{secrets.token_hex(4)}"
        self._connection: AbstractRobustConnection | None = None
        self._queue: aio_pika.abc.AbstractQueue | None = None

    async def __aenter__(self) -> Self:
        self._connection = await aio_pika.connect_robust(self.url, timeout=10)
        channel = await self._connection.channel()
        self.exchange = await channel.declare_exchange("kapps", ExchangeType.TOPIC, durable=False)
        targeted = await channel.declare_exchange("targeted", ExchangeType.DIRECT, durable=False)
        self._queue = await channel.declare_queue(f"test.faults.ecallmgr.{secrets.token_hex(4)}")
        await self._queue.bind(targeted, self.server_id)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                if self._queue is not None:
                    await self._queue.delete(if_unused=False, if_empty=False)
            await self._connection.close()

    async def send(self, media_name: str) -> dict[str, Any]:
        call_id = secrets.token_hex(8)
        body = {"App-Name": "ecallmgr", "App-Version": "4.0.0", "Call-ID": call_id, "Event-Category": "media",
                "Event-Name": "media_req", "Media-Name": media_name, "Msg-ID": secrets.token_hex(8),
                "Node": "ecallmgr@fault.test", "Server-ID": self.server_id, "Stream-Type": "new",
                "System-Log-ID": call_id}  # fmt: skip
        message = aio_pika.Message(json.dumps(body).encode(), content_type="application/json")
        await self.exchange.publish(message, routing_key="media_req")
        return body

    async def reply_to(self, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """The reply carrying ``request``'s Msg-ID, or None after ``timeout`` (others are dropped)."""
        assert self._queue is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message: AbstractIncomingMessage | None = await self._queue.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            reply: dict[str, Any] = json.loads(message.body)
            if reply.get("Msg-ID") == request["Msg-ID"]:
                return reply
        return None


def amqp_server(database_url: str, amqp_url: str, data: Path, **env: str) -> RunningServer:
    """A ``media-mgr serve`` consuming media_req on a queue of its own."""
    data.mkdir(parents=True, exist_ok=True)
    return start_server({"MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(data),
                         "MEDIA_MGR_AMQP_URL": amqp_url,
                         "MEDIA_MGR_AMQP_QUEUE_NAME": f"test.faults.media_req.{secrets.token_hex(4)}",
                         "MEDIA_MGR_AMQP_NODE": f"media_mgr@faults-{secrets.token_hex(2)}", **env},
                        data / "server.log")  # fmt: skip


@contextlib.contextmanager
def served_on_private_postgres(amqp_url: str, data: Path) -> Iterator[tuple[PrivatePostgres, RunningServer]]:
    """A private PostgreSQL cluster and a ready server with AMQP on, on it; both gone after."""
    with PrivatePostgres() as pg:
        srv = amqp_server(pg.dsn, amqp_url, data)
        try:
            wait_ready(srv)
            yield pg, srv
        finally:
            srv.stop()


def wait_ready(srv: RunningServer, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if httpx.get(f"{srv.url}/readyz", timeout=5).status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"not ready: {httpx.get(f'{srv.url}/readyz', timeout=5).text}")


def log_lines(srv: RunningServer) -> list[dict[str, Any]]:
    """The server's JSON log lines (anything else, e.g. a crash's raw stderr, as ``{"raw": line}``)."""
    out: list[dict[str, Any]] = []
    for line in srv.log().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"raw": line})
    return out


def upload(srv: RunningServer, path: Path) -> dict[str, str]:
    with path.open("rb") as f:
        r = httpx.post(f"{srv.url}/v1/media", files={"file": (path.name, f)}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def stream_url(srv: RunningServer, media_name: str, **fields: str) -> str:
    r = httpx.post(f"{srv.url}/v1/stream-urls", json={"media_name": media_name, **fields}, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["stream_url"])
