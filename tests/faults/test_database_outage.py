"""A private PostgreSQL (tests/private_services.py) stopped for ~10 s under a light load.

While it is away every answer is a clean "unavailable": HTTP 503 ``unavailable`` with Retry-After
(never 500, never a hang), ``/readyz`` 503, a media_req answered ``media_error`` ``unavailable``
through the real broker; the log says so in one warning when the outage starts and one line when it
ends, not a traceback per request; and within a second of the database's return all is normal.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fault_peers import (
    Requester,
    log_lines,
    served_on_private_postgres,
    stream_url,
    upload,
)
from private_services import PrivateRabbit

from sounds import tone

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

OUTAGE_SECONDS = 10.0
ANSWER_BOUND = 5.0  # no answer during the outage may take longer (no hang on a dead database)
BACK_WITHIN = 1.0  # the README's promise once PostgreSQL accepts connections again
BACK_SLACK = 1.0  # this test's own polling and a loaded 2-core machine


@dataclass
class Answer:
    what: str
    status: int | str
    seconds: float
    retry_after: str | None = None
    error: str | None = None


async def one_round(client: httpx.AsyncClient, base: str, url: str, ecallmgr: Requester,
                    media_name: str) -> list[Answer]:  # fmt: skip
    out: list[Answer] = []
    for what, target in (("list", f"{base}/v1/media"), ("download", url), ("readyz", f"{base}/readyz")):
        started = time.monotonic()
        r = await client.get(target)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        out.append(Answer(what, r.status_code, time.monotonic() - started, r.headers.get("retry-after"),
                          body.get("error") if isinstance(body, dict) else None))  # fmt: skip
    started = time.monotonic()
    request = await ecallmgr.send(media_name)
    reply = await ecallmgr.reply_to(request, timeout=ANSWER_BOUND)
    status = "none" if reply is None else str(reply["Event-Name"])
    out.append(
        Answer(
            "media_req",
            status,
            time.monotonic() - started,
            error=None if reply is None else str(reply.get("Error-Msg")),
        )
    )
    return out


async def test_database_away_is_503_unavailable_logged_once_and_recovers(
    rabbit: PrivateRabbit, tmp_path: Path
) -> None:
    with served_on_private_postgres(rabbit.url, tmp_path / "srv") as (pg, srv):
        wav = tone(tmp_path / "t.wav", rate=8000, seconds=1)
        item = upload(srv, wav)
        url = stream_url(srv, item["media_name"])
        async with (
            httpx.AsyncClient(timeout=2 * ANSWER_BOUND) as client,
            Requester(rabbit.url) as ecallmgr,
        ):
            before = await one_round(client, srv.url, url, ecallmgr, item["media_name"])
            assert [a.status for a in before] == [200, 200, 200, "media_resp"], before
            logged_before = len(log_lines(srv))
            await asyncio.to_thread(pg.stop)
            during: list[Answer] = []
            stop_at = time.monotonic() + OUTAGE_SECONDS
            while time.monotonic() < stop_at:
                during += await one_round(client, srv.url, url, ecallmgr, item["media_name"])
            await asyncio.to_thread(pg.start)
            back_at = time.monotonic()
            while (await client.get(f"{srv.url}/v1/media")).status_code != 200:
                assert time.monotonic() - back_at < BACK_WITHIN + BACK_SLACK, "not back in time"
                await asyncio.sleep(0.05)
            after = await one_round(client, srv.url, url, ecallmgr, item["media_name"])
        assert [a.status for a in after] == [200, 200, 200, "media_resp"], after
        assert len(during) >= 8  # the load really ran through the outage
        http = [a for a in during if a.what in ("list", "download")]
        assert {(a.status, a.retry_after is not None, a.error) for a in http} == {
            (503, True, "unavailable")
        }, http
        probes = [a for a in during if a.what == "readyz"]
        assert {(a.status, a.retry_after is not None) for a in probes} == {(503, True)}, probes
        amqp = [a for a in during if a.what == "media_req"]
        assert {(a.status, a.error) for a in amqp} == {("media_error", "unavailable")}, amqp
        assert max(a.seconds for a in during) < ANSWER_BOUND, during
        lines = log_lines(srv)[logged_before:]
        noisy = [line for line in lines if line.get("level") in ("warning", "error", "critical")]
        assert not [line for line in lines if "exc" in line or "raw" in line], "a traceback was logged"
        assert [line["msg"] for line in noisy] == ["database unavailable"], noisy
        assert [line for line in lines if line.get("msg") == "database available again"]
