"""Concurrent 8 kHz mod_audio_stream sessions against a real media-mgr, until frames arrive late.

Each session is a module as reference Part G describes it: voipbit (pretty-printed JSON text, a
base64 payload, 50 messages a second, ``start`` first) or amigniter (binary s16le, 50 frames a
second), paced on one 20 ms clock; media-mgr records every session into PostgreSQL as it would in
production. Sessions are added in steps; at each step, over a steady window: CPU of the media-mgr
process, its resident memory, and lateness as the server sees it (RFC 3550 jitter per session and
gaps it inferred, from GET /v1/streams: the load has no gaps, so any is a frame so late it looked
like one) and as the load generator sees it (how late its own ticks ran, so a client bottleneck is
not blamed on the server). A step is held while the server's p95 jitter stays under --late-ms, it
inferred no gap, and its process stays under 95 % of a core (it is one asyncio process).

The seed README claims about 2 MB per stream and 1000+ streams for the module itself; these are the
figures of the other end. Run:
  .venv/bin/python bench/audio_stream_load.py --dialect voipbit --steps 100 200 400 600 800
  .venv/bin/python bench/audio_stream_load.py --dialect binary --steps 100 200 400 600 800
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from memory_large_file import drop_db, scratch_db

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from servers import process_tree, rss_kib, start_server

TICK = 0.020
HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """The server's CPU so far: the process and its children (``--workers N``: every worker)."""
    total = 0
    for each in process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / HZ


def tree_rss_kib(pid: int) -> int:
    return sum(rss_kib(each) for each in process_tree(pid))


class Fleet:
    """The load generator: N module connections ticking together."""

    def __init__(self, port: int, dialect: str) -> None:
        self.url = f"ws://127.0.0.1:{port}/audio_stream"
        self.dialect = dialect
        self.sockets: list[ClientConnection] = []
        self.chunk = 0
        pcm = (np.random.default_rng(1).standard_normal(160) * 2000).astype("<i2").tobytes()
        self.frame = pcm
        self.b64 = base64.b64encode(pcm).decode()
        self.lateness: list[float] = []
        self.stopped = False

    async def add(self, n: int) -> None:
        for _ in range(n):
            i = len(self.sockets)
            if self.dialect == "voipbit":
                ws = await connect(self.url, subprotocols=["audio.freeswitch.org"], compression=None,  # type: ignore[list-item]
                                   ping_interval=None, open_timeout=30)  # fmt: skip
                start = {"sequenceNumber": 0, "event": "start", "start": {
                    "callId": f"call-{i}", "stream_id": f"s{i}", "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 8000}}}  # fmt: skip
                await ws.send(json.dumps(start, indent="\t"))
            else:
                ws = await connect(f"{self.url}/b{i}?rate=8000", compression=None, ping_interval=None,
                                   open_timeout=30)  # fmt: skip
            self.sockets.append(ws)
            if i % 20 == 19:
                await asyncio.sleep(0.02)

    def _media(self, i: int) -> str:
        return (
            f'{{\n\t"sequenceNumber":\t{self.chunk},\n\t"stream_id":\t"s{i}",\n\t"event":\t"media",\n\t"media":\t{{'
            f'\n\t\t"track":\t"inbound",\n\t\t"timestamp":\t"{1_700_000_000_000 + 20 * self.chunk}",'
            f'\n\t\t"chunk":\t{self.chunk},\n\t\t"payload":\t"{self.b64}"\n\t}}\n}}'
        )

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        k = 0
        while not self.stopped:
            k += 1
            self.chunk += 1
            deadline = t0 + k * TICK
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            self.lateness.append(loop.time() - deadline)
            for i, ws in enumerate(list(self.sockets)):
                await ws.send(self._media(i) if self.dialect == "voipbit" else self.frame)
            self.lateness[-1] = max(self.lateness[-1], loop.time() - deadline - TICK)

    async def close(self) -> None:
        self.stopped = True
        await asyncio.gather(*(ws.close(1000) for ws in self.sockets), return_exceptions=True)


async def server_view(url: str, asks: int = 1) -> tuple[list[float], int]:
    """Per-session jitter, and the gaps the server inferred (false ones: the load has none). With N
    workers each lists its own sessions: ``asks`` answers, each on a new connection, merged by id."""
    found: dict[str, dict[str, Any]] = {}
    for _ in range(asks):
        async with httpx.AsyncClient(timeout=60) as http:
            r = await http.get(f"{url}/v1/streams")
        found.update((str(s["id"]), s) for s in r.json()["streams"])
    live = [s for s in found.values() if s["kind"] == "audio_stream" and "jitter_ms" in s]
    return [s["jitter_ms"] for s in live], sum(s["gaps"] for s in live)


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else 0.0


async def bench(args: argparse.Namespace, url: str, port: int, pid: int) -> list[dict[str, float]]:
    fleet = Fleet(port, args.dialect)
    ticker: asyncio.Task[None] | None = None
    base_rss = tree_rss_kib(pid)
    rows = []
    for step in args.steps:
        try:
            await fleet.add(step - len(fleet.sockets))
        except InvalidStatus as exc:  # 503: the server refuses streams it could not keep up with
            print(f"# step {step}: new sessions refused ({exc.response.status_code}) at {len(fleet.sockets)}")
            break
        if ticker is None:
            ticker = asyncio.create_task(fleet.run())
        await asyncio.sleep(3)  # everyone flowing
        fleet.lateness.clear()
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(args.window)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        jitter, gaps = await server_view(url, asks=1 if args.workers == 1 else 8 * args.workers)
        rss = tree_rss_kib(pid)
        row = {
            "sessions": step,
            "cpu_pct": 100 * (cpu1 - cpu0) / (t1 - t0),
            "rss_mib": rss / 1024,
            "kib_per_session": (rss - base_rss) / step,
            "jitter_median_ms": statistics.median(jitter) if jitter else 0.0,
            "jitter_p95_ms": p95(jitter),
            "client_late_p95_ms": 1000 * p95(fleet.lateness),
            "false_gaps": gaps,
        }
        held = row["jitter_p95_ms"] < args.late_ms and row["cpu_pct"] < 95 * args.workers and not gaps
        row["held"] = float(held)  # each worker is one asyncio process: under 95 % of a core each
        rows.append(row)
        print(json.dumps({k: round(v, 2) for k, v in row.items()}), flush=True)
        if not row["held"]:
            break
    await fleet.close()
    if ticker is not None:
        ticker.cancel()
    return rows


def run(args: argparse.Namespace) -> list[dict[str, float]]:
    """One server (``args.workers`` workers) on a scratch database, loaded step by step."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "MEDIA_MGR_DATA_DIR": tmp,
            "MEDIA_MGR_LOG_LEVEL": "warning",
            "MEDIA_MGR_LIMIT_WS_SESSIONS": "10000",
            "MEDIA_MGR_WORKERS": str(args.workers),
        }
        dsn = asyncio.run(scratch_db(args.pg))
        if dsn:
            env["MEDIA_MGR_DATABASE_URL"] = dsn
        log = Path(tempfile.gettempdir()) / f"audio_stream_load_{args.dialect}.log"
        srv = start_server(env, log)
        try:
            print(f"# {args.dialect}, 8 kHz, one track, {os.cpu_count()} cores, {args.workers} worker(s); "
                  f"server log {log}")  # fmt: skip
            return uvloop.run(bench(args, srv.url, srv.port, srv.proc.pid))
        finally:
            srv.stop()
            asyncio.run(drop_db(args.pg, dsn))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialect", choices=["voipbit", "binary"], default="voipbit")
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 200, 400, 600, 800])
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured at each step")
    parser.add_argument("--late-ms", type=float, default=20.0, help="server p95 jitter that counts as late")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--workers", type=int, default=1, help="media-mgr serve --workers")
    args = parser.parse_args()
    rows = run(args)
    held = [r for r in rows if r["held"]]
    if held:
        best = held[-1]
        print(f"# held {int(best['sessions'])} sessions: {best['cpu_pct'] / best['sessions']:.3f} % CPU and "
              f"{best['kib_per_session']:.0f} KiB RSS per session")  # fmt: skip


if __name__ == "__main__":
    main()
