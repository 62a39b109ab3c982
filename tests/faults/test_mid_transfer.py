"""Faults in the middle of a transfer, against services the test owns (tests/private_services.py).

- A large stream URL download while a private PostgreSQL restarts: each client gets either every
  byte, correct, or a clean error (a 503, or a body cut short that the client can tell from its
  Content-Length), never wrong or silently short bytes.
- A media_req while a private RabbitMQ restarts: the server reconnects and answers; a request sent
  while the broker is away is refused by the broker (the requester sees it), one accepted by the
  broker is answered, or ecallmgr's own timeout runs out (never a wrong answer).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import httpx
import pytest
from fault_peers import Requester, amqp_server, served_on_private_postgres, stream_url, upload, wait_ready
from private_services import PrivateRabbit

from sounds import tone

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CLIENTS = 4
READ_BYTES_PER_SECOND = 400_000  # slow readers: the restart lands mid-body
ECALLMGR_TIMEOUT = 2.0  # Kazoo's media_req wait
BURST = 20


async def slow_download(url: str, reference: bytes) -> str:
    """Read ``url`` slowly; 'complete' (checked equal), '503', or 'cut' (a correct prefix, then an error)."""
    got = bytearray()
    try:
        async with httpx.AsyncClient(timeout=30) as client, client.stream("GET", url) as r:
            if r.status_code == 503:
                assert r.headers.get("retry-after"), r.headers
                return "503"
            assert r.status_code == 200, r.status_code
            assert int(r.headers["content-length"]) == len(reference)
            async for piece in r.aiter_raw(32 * 1024):
                got += piece
                assert reference.startswith(bytes(got)), f"wrong bytes at {len(got) - len(piece)}"
                await asyncio.sleep(len(piece) / READ_BYTES_PER_SECOND)
    except (httpx.RemoteProtocolError, httpx.ReadError):
        cut = True
    else:
        cut = False
    if cut:
        assert len(got) < len(reference)  # an error after every byte would be a lie
        return "cut"
    assert hashlib.sha256(got).digest() == hashlib.sha256(reference).digest(), len(got)
    return "complete"


async def test_a_large_download_during_a_database_restart_is_complete_or_cleanly_cut(
    rabbit: PrivateRabbit, tmp_path: Path
) -> None:
    with served_on_private_postgres(rabbit.url, tmp_path / "srv") as (pg, srv):
        wav = tone(tmp_path / "big.wav", rate=48000, channels=2, seconds=40)  # ~7.7 MB
        item = upload(srv, wav)
        url = stream_url(srv, item["media_name"])
        async with httpx.AsyncClient(timeout=30) as client:
            reference = (await client.get(url)).content
        assert len(reference) > 5_000_000
        downloads = [asyncio.create_task(slow_download(url, reference)) for _ in range(CLIENTS)]
        await asyncio.sleep(2.0)  # every client is mid-body (each needs ~20 s)
        assert not any(d.done() for d in downloads)
        await asyncio.to_thread(pg.restart)
        outcomes = await asyncio.wait_for(asyncio.gather(*downloads), timeout=120)
        assert set(outcomes) <= {"complete", "503", "cut"}
        async with httpx.AsyncClient(timeout=30) as client:  # and afterwards all is normal
            deadline = time.monotonic() + 10
            while (r := await client.get(url)).status_code != 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert r.content == reference


async def test_a_media_req_across_a_broker_restart_is_answered_after_reconnect(
    rabbit: PrivateRabbit, tmp_path: Path, database_url: str
) -> None:
    srv = amqp_server(database_url, rabbit.url, tmp_path / "srv")
    try:
        wait_ready(srv)
        item = upload(srv, tone(tmp_path / "t.wav", seconds=1))
        async with Requester(rabbit.url) as ecallmgr:
            request = await ecallmgr.send(item["media_name"])
            reply = await ecallmgr.reply_to(request, timeout=ECALLMGR_TIMEOUT)
            assert reply is not None and reply["Event-Name"] == "media_resp"
            for _ in range(BURST):
                await ecallmgr.send(item["media_name"])
            await asyncio.to_thread(rabbit.stop_app)  # some of the burst are in flight right now
            await asyncio.to_thread(rabbit.start_app)
            # The burst's requests and replies died with the broker's non-durable queues (Kazoo's
            # own layout): ecallmgr's timeout answers those. What must hold is below.
            # Requests keep coming (ecallmgr retries its own way); each accepted one is answered.
            deadline = time.monotonic() + 60
            answered = None
            while answered is None and time.monotonic() < deadline:
                try:
                    request = await ecallmgr.send(item["media_name"])
                except Exception:  # the requester's own connection is still coming back
                    await asyncio.sleep(0.5)
                    continue
                answered = await ecallmgr.reply_to(request, timeout=ECALLMGR_TIMEOUT)
            assert answered is not None, "no answer within a minute of the broker's return"
            assert answered["Event-Name"] == "media_resp" and answered["Msg-ID"] == request["Msg-ID"]
    finally:
        srv.stop()
