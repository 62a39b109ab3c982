"""media_req while PostgreSQL is away: ``media_error`` with ``unavailable`` (the error table's
``StoreUnavailable.amqp_reason``) at once, never ``internal_error`` or silence, and no traceback
from the AMQP edge.

The database is taken away by cutting a TCP forwarder that stands between the server and the
machine's PostgreSQL: the shared server itself is never stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from amqp_peers import ACCOUNT, AMQP_URL, Ecallmgr, closed_port
from servers import RunningServer, start_server

pytestmark = pytest.mark.timeout(120)


@dataclass
class Forwarder:
    """A TCP proxy whose ``cut()`` drops every connection and refuses new ones: a database gone."""

    target: tuple[str, int]
    port: int = field(default_factory=closed_port)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()


@contextlib.asynccontextmanager
async def server_behind(
    forwarder: Forwarder, database_url: str, data: Path
) -> AsyncIterator[tuple[RunningServer, str]]:
    """A server whose database is reached through ``forwarder``; with its own queue (requests are
    sent straight to it, so no other instance on the shared broker answers them)."""
    parts = urlsplit(database_url)
    via = parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{forwarder.port}").geturl()
    queue = f"test.media_mgr.dbdown.{secrets.token_hex(4)}"
    env = {"MEDIA_MGR_DATABASE_URL": via, "MEDIA_MGR_DATA_DIR": str(data), "MEDIA_MGR_AMQP_URL": AMQP_URL,
           "MEDIA_MGR_AMQP_QUEUE_NAME": queue, "MEDIA_MGR_AMQP_NODE": f"media_mgr@{queue}"}  # fmt: skip
    srv = await asyncio.to_thread(start_server, env, data / "server.log")
    try:
        async with httpx.AsyncClient(base_url=srv.url, timeout=5) as http:
            for _ in range(200):
                if (await http.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
        yield srv, queue
    finally:
        await asyncio.to_thread(srv.stop)


async def test_media_req_while_the_database_is_away_is_answered_unavailable(
    database_url: str, tmp_path: Path
) -> None:
    parts = urlsplit(database_url)
    forwarder = Forwarder((parts.hostname or "127.0.0.1", parts.port or 5432))
    await forwarder.start()
    async with server_behind(forwarder, database_url, tmp_path) as (srv, queue):
        async with Ecallmgr("", queue) as ecallmgr:
            missing = f"/{ACCOUNT}/{secrets.token_hex(16)}"
            await ecallmgr.send(missing)
            reply, _ = await ecallmgr.reply(timeout=2)
            assert reply["Error-Msg"] == "not_found"  # the database answers through the forwarder
            await forwarder.cut()
            for _ in range(3):
                request = await ecallmgr.send(f"/{ACCOUNT}/{secrets.token_hex(16)}")
                reply, _ = await ecallmgr.reply(timeout=2)  # inside ecallmgr's 2 s
                assert reply["Msg-ID"] == request["Msg-ID"]
                assert (reply["Event-Name"], reply["Error-Code"], reply["Error-Msg"]) == (
                    "media_error",
                    "other",
                    "unavailable",
                )
        amqp_lines = [
            json.loads(line) for line in srv.log().splitlines() if '"logger": "media_mgr.amqp"' in line
        ]
        # Other components' own lines about the outage (the pool, the owner lock) are theirs.
        assert amqp_lines and not [e for e in amqp_lines if "exc" in e or e["level"] == "error"]
