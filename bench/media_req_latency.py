"""media_req -> media_resp latency through the real broker, beside a bare aio-pika echo in the same run.

An ecallmgr-shaped requester (``tests/amqp/amqp_peers.Ecallmgr``: every key ecallmgr sends, and the AMQP
timestamp property as Kazoo 4.3+ sets it) publishes ``--rate`` requests per second for ``--seconds`` and
times each reply on its own ``targeted`` queue. Requests go through the broker's default exchange with the
responder's queue name as routing key, so they reach that responder only and no other service bound to
``kapps`` on a shared broker.

The anchor, measured first in the same run on the same broker: a bare aio-pika responder answering each
request at once with a fixed URL (no validation, no database, no token, no ack, no publisher confirm:
``no_ack`` consuming and a channel without confirms, as lean as aio-pika's own API goes). Then the
broker's floor: the same echo on the hand-framed client (``amqp_raw``), which costs next to nothing, so
what it cannot hold (a p99, stalls) no responder on this broker and machine can.
The gap to it is what media-mgr adds: validation, the catalog lookup, signing a URL, manual acks only
after the broker confirmed the reply.

The load generator reports its own lateness: how far behind its schedule each request left (a late
generator offers less than ``--rate``, which would flatter the responder). Replies that never came are
"lost"; media-mgr's own count of requests it refused to answer late is read from its /metrics.

Each responder's CPU time is printed per request it handled (answered, or refused as late): steady even on
a loaded machine, where latencies are not. The generator (sender and collector, each a process of its own
on the hand-framed AMQP client in ``amqp_raw``: pre-built publish frames written in one write per wake-up,
reply bodies sliced for their Msg-ID) prints its own CPU per request sent too: on 2 cores, every
millisecond it spends is one the responder and the broker do not get.

``--sweep 500,1000,...`` then finds, per responder, the highest of those rates it sustains for
``--sweep-seconds`` with every request answered and p99 under 10 ms (rates tried in rising order, stopping
at the first failure): a figure that still means something where the fixed rate saturates the machine.

Run: .venv/bin/python bench/media_req_latency.py --rate 2000 --seconds 30 --sweep 500,1000,1500,2000,2500
     (PostgreSQL and RabbitMQ on 127.0.0.1; ``--profile out.prof`` runs the server under cProfile;
     ``--baseline-tree DIR`` also measures a server run from another checkout, before/after in one run:
     ``git archive main | tar -x -C DIR``.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import multiprocessing as mp
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing import Process
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import aio_pika
import httpx
from aio_pika.abc import AbstractIncomingMessage
from pamqp import commands
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "amqp"))
from amqp_raw import PublishFrames, RawAmqp

from media_mgr.amqp import request_age

from amqp_peers import AMQP_URL, UNIX_EPOCH_IN_GREGORIAN, Ecallmgr
from memory_large_file import drop_db, scratch_db
from servers import start_server
from sounds import tone

# CPU time, not wall time: on a shared machine wall time charges other processes' turns to whatever ran.
PROFILED_SERVE = (
    "import cProfile, sys, time; out = sys.argv[1]; sys.argv = ['media-mgr', 'serve']; "
    "from media_mgr.cli import main; p = cProfile.Profile(time.process_time)\n"
    "try:\n p.runcall(main)\nexcept SystemExit:\n pass\nfinally:\n p.dump_stats(out)"
)


@dataclass
class Run:
    """One responder's figures: reply latencies (ms), the generator's lateness (ms), what never came."""

    latencies: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    lost: int = 0
    seconds: float = 0.0
    cpu_ms: float = 0.0  # the responder process's CPU time during the measurement
    cpu_ms_per_request: float = float("nan")  # ... per request it handled: answered or refused as late
    generator_cpu_ms: float = float("nan")  # the sender's and the collector's, per request sent
    handled: int | None = None  # as counted by the responder itself, when it counts
    p99_by_second: list[float] = field(default_factory=list)  # each second of sending: its requests' p99

    def tail_spread(self) -> str:
        """Whether the p99 is a few bad moments or every second's: the lowest and highest of the
        per-second p99s."""
        if not self.p99_by_second:
            return "n/a"
        return f"{min(self.p99_by_second):.1f} to {max(self.p99_by_second):.1f} ms"

    def per_handled(self, refused: int) -> None:
        """CPU per request the responder handled, not per request sent: beyond what it keeps up with,
        the broker drops requests (Kazoo's ``x-max-length`` of 100) that never cost it anything."""
        count = self.handled if self.handled is not None else len(self.latencies) + refused
        self.cpu_ms_per_request = self.cpu_ms / max(count, 1)


async def echo_responder(queue_name: str, ready: Event, stop: Event, handled: Synchronized[int]) -> None:
    """The floor: answer each request with a fixed media_resp, as fast as aio-pika can.

    It needs media-mgr's timestamp decoder too: bare aio-pika drops its connection on Kazoo's stamp.
    """
    request_age.install()
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel(publisher_confirms=False)
    targeted = await channel.declare_exchange("targeted", "direct", durable=False, auto_delete=False)
    # Bounded like media-mgr's (Kazoo's) queue, so an overload leaves the same short backlog behind.
    queue = await channel.declare_queue(queue_name, exclusive=True,
                                        arguments={"x-max-length": 100, "x-message-ttl": 60_000})  # fmt: skip

    async def on_message(message: AbstractIncomingMessage) -> None:
        handled.value += 1  # its own count: what it consumed, answered in time or not
        req = json.loads(message.body)
        reply = {"Event-Category": "media", "Event-Name": "media_resp", "Msg-ID": req["Msg-ID"],
                 "Media-Name": req["Media-Name"], "Stream-URL": "http://127.0.0.1:1/x.wav",
                 "App-Name": "echo", "App-Version": "0"}  # fmt: skip
        await targeted.publish(aio_pika.Message(json.dumps(reply).encode(), content_type="application/json"),
                               routing_key=req["Server-ID"], mandatory=False)  # fmt: skip

    await queue.consume(on_message, no_ack=True)
    ready.set()
    await asyncio.to_thread(stop.wait)
    await connection.close()


async def raw_echo_responder(
    queue_name: str, ready: Event, stop: Event, handled: Synchronized[int], settled: bool = False
) -> None:
    """The broker's floor: the echo on the hand-framed client (``amqp_raw``), no JSON decoding, no task per
    message. What this one cannot hold (its stalls, its p99) the broker and the machine cannot give anyone.

    ``settled``: with media-mgr's discipline, which is the broker's work too: requests consumed with
    manual acks, replies published in confirm mode, each request acknowledged once its reply's confirm
    came (one reply per request, in order, so a confirm's tag is its request's delivery tag).
    """
    amqp: RawAmqp | None = None

    def on_confirm(tag: int, multiple: bool) -> None:
        assert amqp is not None
        amqp.send(commands.Basic.Ack(tag, multiple))

    replies: dict[bytes, Callable[[bytes, int], bytes]] = {}

    def field_of(body: bytes, key: bytes) -> bytes:
        at = body.find(key)
        start = body.find(b'"', at + len(key)) + 1
        return body[start : body.find(b'"', start)]

    def on_request(body: bytes) -> None:
        handled.value += 1
        msg_id, server_id = field_of(body, b'"Msg-ID"'), field_of(body, b'"Server-ID"')
        frames = replies.get(server_id)
        if frames is None:
            frames = replies[server_id] = PublishFrames(
                "targeted", server_id.decode(), "application/json"
            ).frames
        reply = (b'{"Event-Category":"media","Event-Name":"media_resp","Msg-ID":"' + msg_id
                 + b'","Stream-URL":"http://127.0.0.1:1/x.wav","App-Name":"echo","App-Version":"0"}')  # fmt: skip
        assert amqp is not None
        amqp.write(frames(reply, 0))

    amqp = await RawAmqp.connect(AMQP_URL, on_request, on_confirm if settled else None)
    await amqp.call(commands.Exchange.Declare(exchange="targeted", exchange_type="direct"),
                    commands.Exchange.DeclareOk)  # fmt: skip
    await amqp.call(commands.Queue.Declare(queue=queue_name, exclusive=True,
                                           arguments={"x-max-length": 100, "x-message-ttl": 60_000}),
                    commands.Queue.DeclareOk)  # fmt: skip
    if settled:
        await amqp.call(commands.Basic.Qos(prefetch_count=1000), commands.Basic.QosOk)
        await amqp.call(commands.Confirm.Select(), commands.Confirm.SelectOk)
    await amqp.call(commands.Basic.Consume(queue=queue_name, no_ack=not settled), commands.Basic.ConsumeOk)
    ready.set()
    await asyncio.to_thread(stop.wait)
    await amqp.close()


async def collect(server_id: Connection, stop: Event, out: Connection) -> None:
    """The requester's reply side: its own queue bound to ``targeted``; Msg-ID -> arrival (monotonic).

    A hand-parsed AMQP client (``amqp_raw``): each reply body's Msg-ID is sliced out, not JSON-decoded,
    so the generator is not what is measured.
    """
    arrived: dict[bytes, float] = {}
    clock = time.monotonic

    def on_reply(body: bytes) -> None:
        at = body.find(b'"Msg-ID"')
        if at < 0:
            return
        start = body.find(b'"', at + 8) + 1
        msg_id = body[start : body.find(b'"', start)]
        if msg_id not in arrived:
            arrived[msg_id] = clock()

    amqp = await RawAmqp.connect(AMQP_URL, on_reply)
    await amqp.call(commands.Exchange.Declare(exchange="targeted", exchange_type="direct"),
                    commands.Exchange.DeclareOk)  # fmt: skip
    queue = f"bench.ecallmgr.{secrets.token_hex(4)}"
    await amqp.call(commands.Queue.Declare(queue=queue, exclusive=True), commands.Queue.DeclareOk)
    me = Ecallmgr().server_id  # ecallmgr's shape: <node>-<pid>-<hex>
    await amqp.call(
        commands.Queue.Bind(queue=queue, exchange="targeted", routing_key=me), commands.Queue.BindOk
    )
    await amqp.call(commands.Basic.Consume(queue=queue, no_ack=True), commands.Basic.ConsumeOk)
    server_id.send(me)
    await asyncio.to_thread(stop.wait)
    await amqp.close()
    out.send(({key.decode(): at for key, at in arrived.items()}, time.process_time()))


async def send(queue_name: str, server_id: str, media_name: str, rate: int, seconds: float,
               out: Connection) -> None:  # fmt: skip
    """The requester's sending side: ``rate``/s on schedule; Msg-ID -> departure, and its own lateness.

    Each request as ecallmgr publishes it (every key, content type, Kazoo's µs timestamp property stamped
    as it leaves), without confirms, to the responder's queue by the default exchange. Bodies are built
    before the clock starts; each wake-up writes every request due by then in one write, and each
    request's lateness is how long after its own due time it left.
    """
    shape = Ecallmgr()
    shape.server_id = server_id
    n = int(rate * seconds)
    bodies = [shape.media_req(media_name) for _ in range(n)]
    msg_ids = [body["Msg-ID"] for body in bodies]
    payloads = [json.dumps(body).encode() for body in bodies]
    departures = [0.0] * n
    lateness = [0.0] * n
    amqp = await RawAmqp.connect(AMQP_URL)
    frames = amqp.publish_frames("", queue_name, "application/json").frames
    clock, epoch = time.monotonic, UNIX_EPOCH_IN_GREGORIAN * 1_000_000
    sent = 0
    t0 = clock()
    while sent < n:
        now = clock()
        due = min(n, int((now - t0) * rate) + 1)
        stamp = time.time_ns() // 1000 + epoch  # kz_time:now_us(), as each leaves
        batch = []
        for i in range(sent, due):
            batch.append(frames(payloads[i], stamp))
            departures[i] = now
            lateness[i] = (now - t0 - i / rate) * 1000
        amqp.write(b"".join(batch))
        sent = due
        if (delay := t0 + sent / rate - clock()) > 0:
            await asyncio.sleep(delay)
    elapsed = clock() - t0
    await amqp.close()
    out.send((dict(zip(msg_ids, departures, strict=True)), lateness, elapsed, time.process_time()))


def run_in_process(target: Callable[..., Coroutine[Any, Any, None]], *args: object) -> Process:
    process = Process(target=_run, args=(target, *args), daemon=True)
    process.start()
    return process


def _run(target: Callable[..., Coroutine[Any, Any, None]], *args: object) -> None:
    asyncio.run(target(*args))


def measure(queue_name: str, media_name: str, rate: int, seconds: float) -> Run:
    """Sender and collector in processes of their own (the responder in a third): none slows another."""
    stop = mp.Event()
    ids_in, ids_out = mp.Pipe(duplex=False)
    collected_in, collected_out = mp.Pipe(duplex=False)
    sent_in, sent_out = mp.Pipe(duplex=False)
    collector = run_in_process(collect, ids_out, stop, collected_out)
    server_id = ids_in.recv()
    sender = run_in_process(send, queue_name, server_id, media_name, rate, seconds, sent_out)
    departed, lateness, elapsed, sender_cpu = sent_in.recv()
    sender.join()
    time.sleep(3.0)  # a reply later than this is as good as lost
    stop.set()
    arrived, collector_cpu = collected_in.recv()
    collector.join()
    run = Run(lateness=lateness, seconds=elapsed)
    run.generator_cpu_ms = (sender_cpu + collector_cpu) * 1000 / max(len(lateness), 1)
    for msg_id, left in departed.items():
        if msg_id in arrived:
            run.latencies.append((arrived[msg_id] - left) * 1000)
        else:
            run.lost += 1
    by_second: dict[int, list[float]] = {}
    t0 = min(departed.values(), default=0.0)
    for msg_id, left in departed.items():
        if msg_id in arrived:
            by_second.setdefault(int(left - t0), []).append((arrived[msg_id] - left) * 1000)
    run.p99_by_second = [pct(v, 99) for _, v in sorted(by_second.items()) if len(v) >= 2]
    print(
        "  p99 of each second, in order (ms):",
        " ".join(f"{v:.0f}" for v in run.p99_by_second),
        file=sys.stderr,
    )
    return run


def measure_cpu(pid: int | None, queue_name: str, media_name: str, args: argparse.Namespace,
                rate: int | None = None, seconds: float | None = None) -> Run:  # fmt: skip
    """``measure``, with the responder process's CPU time over it."""
    before = cpu_seconds(pid or 0)
    run = measure(queue_name, media_name, rate or args.rate, seconds or args.seconds)
    run.cpu_ms = (cpu_seconds(pid or 0) - before) * 1000
    return run


def sweep(pid: int | None, queue_name: str, media_name: str, args: argparse.Namespace) -> str:
    """The highest of ``--sweep`` rates (tried in rising order, ``--sweep-seconds`` each, stopping at the
    first failure) that this responder sustained with every request answered and p99 under 10 ms."""
    if not args.sweep:
        return ""
    best = "none"
    for rate in sorted(int(r) for r in args.sweep.split(",")):
        wait_idle(pid or 0)
        run = measure_cpu(pid, queue_name, media_name, args, rate, args.sweep_seconds)
        p99 = pct(run.latencies, 99) if run.latencies else float("inf")
        print(f"  sweep {rate}/s: lost {run.lost}, p99 {p99:.2f} ms, generator late p99 "
              f"{pct(run.lateness, 99):.2f} ms", file=sys.stderr)  # fmt: skip
        if run.lost or not p99 < 10.0:
            break
        best = f"{rate}/s"
    return best


def wait_idle(pid: int, limit: float = 60.0) -> None:
    """Until the responder has worked off what an overloaded run left it (requests buffered in its
    socket or its client library): under 5 % of a core over half a second, or ``limit`` seconds."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < 0.025:
            return


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1] if len(values) >= 2 else float("nan")


def late_refused(metrics_text: str) -> int:
    """media-mgr's own count of requests it did not answer because they were past the 2 s budget."""
    total = 0.0
    for line in metrics_text.splitlines():
        if match := re.match(r"media_mgr_amqp_requests_late_total(?:\{[^}]*\})? (\S+)", line):
            total += float(match.group(1))
    return int(total)


def own_view(metrics_text: str) -> str:
    """media-mgr's own split of a request's time, from its histograms: the wait before it took the
    request (the broker, from ecallmgr's stamp) and its own time to a confirmed reply; each p99 as
    the bucket bound it falls under."""
    bounds: dict[str, str] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name not in ("media_mgr_amqp_request_wait_seconds", "media_mgr_amqp_reply_seconds"):
            continue
        buckets = [(float(s.labels["le"]), s.value) for s in family.samples if s.name.endswith("_bucket")]
        total = max((count for _, count in buckets), default=0.0)
        le = next((le for le, count in sorted(buckets) if total and count >= 0.99 * total), float("nan"))
        bounds[family.name] = f"<= {le * 1000:g} ms" if le != float("inf") else "> 2000 ms"
    return (f"waited before media-mgr took it p99 {bounds.get('media_mgr_amqp_request_wait_seconds', 'n/a')}, "
            f"taken to reply confirmed p99 {bounds.get('media_mgr_amqp_reply_seconds', 'n/a')}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--profile", type=Path, help="run the server under cProfile, write its stats here")
    parser.add_argument("--no-echo", action="store_true", help="skip the anchor (profiling runs only)")
    parser.add_argument("--sweep", default="",
                        help="also find each responder's highest sustained rate among these, e.g. "
                             "500,1000,1500,2000,2500 (0 lost, p99 < 10 ms)")  # fmt: skip
    parser.add_argument("--sweep-seconds", type=float, default=5.0)
    parser.add_argument("--baseline-tree", type=Path,
                        help="also measure media-mgr from this checkout (before/after in one run), e.g. "
                             "`git archive main | tar -x -C /tmp/base`")  # fmt: skip
    args = parser.parse_args()
    queue_name = f"bench.media_req.{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {"MEDIA_MGR_DATA_DIR": str(work), "MEDIA_MGR_AMQP_URL": AMQP_URL, "MEDIA_MGR_LOG_LEVEL": "warning",
               "MEDIA_MGR_AMQP_QUEUE_NAME": queue_name}  # fmt: skip
        dsn = asyncio.run(scratch_db(args.pg))
        if dsn:
            env["MEDIA_MGR_DATABASE_URL"] = dsn
        prefix = [sys.executable, "-c", PROFILED_SERVE, str(args.profile.resolve())] if args.profile else []
        srv = start_server(env, work / "server.log", timeout=120, prefix=prefix)
        try:
            wav = tone(work / "p.wav", seconds=1)
            with wav.open("rb") as f:
                item = httpx.post(f"{srv.url}/v1/media", files={"file": ("p.wav", f)},
                                  data={"prompt_id": "vm-bench", "language": "en-us"}).json()  # fmt: skip
            while httpx.get(f"{srv.url}/readyz").status_code != 200:
                time.sleep(0.1)

            results: dict[str, Run] = {}
            refused: dict[str, int] = {}
            sustained: dict[str, str] = {}
            view = ""
            echoes: dict[str, Callable[..., Coroutine[Any, Any, None]]] = {
                "bare aio-pika echo (anchor)": echo_responder,
                "raw AMQP echo (broker floor)": raw_echo_responder,
                "raw AMQP echo, acks after confirms": functools.partial(raw_echo_responder, settled=True),
            }
            for label, responder in ({} if args.no_echo else echoes).items():
                echo_queue = f"bench.echo.{secrets.token_hex(3)}"
                ready, stop = mp.Event(), mp.Event()
                handled: Synchronized[int] = mp.Value("q", 0, lock=False)
                echo = run_in_process(responder, echo_queue, ready, stop, handled)
                ready.wait(30)
                results[label] = run = measure_cpu(echo.pid, echo_queue, "x", args)
                run.handled = handled.value
                sustained[label] = sweep(echo.pid, echo_queue, "x", args)
                stop.set()
                echo.join()
            if args.baseline_tree:
                name = f"media-mgr from {args.baseline_tree}"
                results[name], refused[name], sustained[name] = measure_tree(
                    args.baseline_tree, env, work, item, args
                )
            results["media-mgr"] = measure_cpu(srv.proc.pid, queue_name, item["media_name"], args)
            metrics_text = httpx.get(f"{srv.url}/metrics").text
            refused["media-mgr"] = late_refused(metrics_text)
            view = own_view(metrics_text)
            sustained["media-mgr"] = sweep(srv.proc.pid, queue_name, item["media_name"], args)
            for name, run in results.items():
                run.per_handled(refused.get(name, 0))
        finally:
            srv.stop()
            asyncio.run(drop_db(args.pg, dsn))
            with contextlib.suppress(Exception):
                asyncio.run(delete_queue(queue_name))
    print(f"{args.rate} requests/s offered for {args.seconds:.0f} s each, RabbitMQ and PostgreSQL on loopback, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(
        "| responder | replies | lost | p50 | p99 | max | generator late p99 / max | sent/s "
        "| CPU/request handled | generator CPU/request |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        lat = r.latencies or [float("nan")]
        print(f"| {name} | {len(r.latencies)} | {r.lost} | {pct(lat, 50):.2f} ms | {pct(lat, 99):.2f} ms "
              f"| {max(lat):.2f} ms | {pct(r.lateness, 99):.2f} / {max(r.lateness):.2f} ms "
              f"| {len(r.lateness) / r.seconds:.0f} | {r.cpu_ms_per_request:.3f} ms "
              f"| {r.generator_cpu_ms:.3f} ms |")  # fmt: skip
    print(f"media-mgr's name: {item['media_name']} (resolved once, then answered from memory)")
    for name, r in results.items():
        print(f"{name}: p99 of each second of the run, lowest to highest: {r.tail_spread()}")
    if view:
        print(f"media-mgr's own view of the fixed-rate run: {view}")
    for name, count in refused.items():
        print(f"{name} refused as late (past 2 s, its own metric): {count}")
    for name, best in sustained.items():
        if best:
            print(
                f"{name}: highest rate sustained (0 lost, p99 < 10 ms, {args.sweep_seconds:.0f} s each): {best}"
            )


def measure_tree(tree: Path, env: dict[str, str], work: Path, item: dict[str, Any],
                 args: argparse.Namespace) -> tuple[Run, int, str]:  # fmt: skip
    """The same measurement on a server run from another checkout, on the same database."""
    queue_name = f"bench.media_req.{secrets.token_hex(3)}"
    data = work / "baseline"
    data.mkdir()
    tree = tree.resolve()
    env = {**env, "MEDIA_MGR_DATA_DIR": str(data), "MEDIA_MGR_AMQP_QUEUE_NAME": queue_name,
           "PYTHONPATH": str(tree)}  # fmt: skip
    srv = start_server(env, work / "baseline.log", timeout=120, prefix=["env", f"--chdir={tree}"])
    try:
        while httpx.get(f"{srv.url}/readyz").status_code != 200:
            time.sleep(0.1)
        run = measure_cpu(srv.proc.pid, queue_name, item["media_name"], args)
        refused = late_refused(httpx.get(f"{srv.url}/metrics").text)
        return run, refused, sweep(srv.proc.pid, queue_name, item["media_name"], args)
    finally:
        srv.stop()
        with contextlib.suppress(Exception):
            asyncio.run(delete_queue(queue_name))


async def delete_queue(name: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(name)


if __name__ == "__main__":
    main()
