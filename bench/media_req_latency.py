"""media_req -> media_resp latency through the real broker, beside a bare aio-pika echo.

An ecallmgr-shaped requester publishes ``--rate`` requests per second for ``--seconds`` to
``kapps``/``media_req`` and times each reply on its own ``targeted`` queue. The floor, in the same
run on the same broker: a bare aio-pika responder that answers every request at once with a
fixed URL, on its own exchange (no validation, no database, no token). The gap is what media-mgr
adds: validation, one indexed query, signing a URL.
Run: .venv/bin/python bench/media_req_latency.py   (PostgreSQL and RabbitMQ on 127.0.0.1)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aio_pika
import httpx
from aio_pika.abc import AbstractIncomingMessage, ExchangeType

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "amqp"))
from amqp_peers import AMQP_URL, Ecallmgr
from memory_large_file import drop_db, scratch_db
from servers import start_server
from sounds import tone


async def echo_responder(exchange_name: str) -> aio_pika.abc.AbstractConnection:
    """The floor: answer each request with a fixed media_resp, as fast as aio-pika can."""
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        exchange_name, ExchangeType.TOPIC, durable=False, auto_delete=False
    )
    targeted = await channel.declare_exchange(
        "targeted", ExchangeType.DIRECT, durable=False, auto_delete=False
    )
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, "media_req")

    async def on_message(message: AbstractIncomingMessage) -> None:
        req = json.loads(message.body)
        reply = {"Event-Category": "media", "Event-Name": "media_resp", "Msg-ID": req["Msg-ID"],
                 "Media-Name": req["Media-Name"], "Stream-URL": "http://127.0.0.1:1/x.wav",
                 "App-Name": "echo", "App-Version": "0"}  # fmt: skip
        await targeted.publish(aio_pika.Message(json.dumps(reply).encode(), content_type="application/json"),
                               routing_key=req["Server-ID"])  # fmt: skip

    await queue.consume(on_message, no_ack=True)
    return connection


async def measure(exchange: str, media_name: str, rate: int, seconds: float) -> tuple[list[float], int]:
    async with Ecallmgr(exchange=exchange) as ecallmgr:
        sent: dict[str, float] = {}
        latencies: list[float] = []

        async def collect() -> None:
            while True:
                message = await ecallmgr.replies.get()
                body = json.loads(message.body)
                started = sent.pop(body["Msg-ID"], None)
                if started is not None:
                    latencies.append((time.perf_counter() - started) * 1000)

        collector = asyncio.create_task(collect())
        t0 = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            body = ecallmgr.media_req(media_name)
            sent[body["Msg-ID"]] = time.perf_counter()
            await ecallmgr.publish(json.dumps(body).encode())
        await asyncio.sleep(2.0)
        collector.cancel()
        return latencies, len(sent)


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1] if len(values) >= 2 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {"MEDIA_MGR_DATA_DIR": str(work), "MEDIA_MGR_AMQP_URL": AMQP_URL, "MEDIA_MGR_LOG_LEVEL": "warning",
               "MEDIA_MGR_AMQP_QUEUE_NAME": f"bench.media_req.{secrets.token_hex(3)}"}  # fmt: skip
        dsn = asyncio.run(scratch_db(args.pg))
        if dsn:
            env["MEDIA_MGR_DATABASE_URL"] = dsn
        srv = start_server(env, work / "server.log", timeout=120)
        try:
            wav = tone(work / "p.wav", seconds=1)
            with wav.open("rb") as f:
                item = httpx.post(f"{srv.url}/v1/media", files={"file": ("p.wav", f)},
                                  data={"prompt_id": "vm-bench", "language": "en-us"}).json()  # fmt: skip
            while httpx.get(f"{srv.url}/readyz").status_code != 200:
                time.sleep(0.1)

            async def run() -> dict[str, tuple[list[float], int]]:
                echo_exchange = f"bench.echo.{secrets.token_hex(3)}"
                echo = await echo_responder(echo_exchange)
                try:
                    floor = await measure(echo_exchange, "x", args.rate, args.seconds)
                    channel = await echo.channel()
                    await channel.exchange_delete(echo_exchange)
                finally:
                    await echo.close()
                ours = await measure("kapps", "prompt://system_media/vm-bench/en-us", args.rate, args.seconds)
                by_id = await measure("kapps", item["media_name"], args.rate, args.seconds)
                return {"bare aio-pika echo (floor)": floor, "media-mgr, prompt:// name": ours,
                        "media-mgr, /<account>/<id> name": by_id}  # fmt: skip

            results = asyncio.run(run())
        finally:
            srv.stop()
            asyncio.run(drop_db(args.pg, dsn))
    print(
        f"{args.rate} requests/s for {args.seconds:.0f} s each, RabbitMQ and PostgreSQL on loopback, 2 cores"
    )
    print("| responder | replies | lost | p50 | p99 | max |")
    print("|---|---|---|---|---|---|")
    for name, (lat, lost) in results.items():
        print(
            f"| {name} | {len(lat)} | {lost} | {pct(lat, 50):.2f} ms | {pct(lat, 99):.2f} ms | {max(lat):.2f} ms |"
        )


if __name__ == "__main__":
    main()
