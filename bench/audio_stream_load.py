"""N concurrent 8 kHz mod_audio_stream sessions: media-mgr beside bare WebSocket servers, one run.

Each session is a module as reference Part G describes it: voipbit (pretty-printed JSON text, a
base64 payload, ``start`` first, subprotocol offered) or amigniter (binary s16le), 50 messages a
second, all paced on one 20 ms clock. The same load goes, one server after the other, to:
- the anchors, bare receive-and-discard servers (``ws_bare_server.py``): picows, the websockets
  asyncio server, uvicorn with wsproto and with websockets-sansio (the HTTP port's stack);
- media-mgr, recording every session into PostgreSQL, on its audio_stream listener (picows) and,
  with ``--http-port-too``, on the route of its HTTP port.
Per server, over a steady window: CPU of its process (% of one core, and µs per frame the generator
managed to send, which stays meaningful when the generator runs late), RSS growth per session,
and for media-mgr what it saw (GET /v1/streams: RFC 3550 jitter per session, p95, and the gaps it
inferred; the load has none, so any is false). The load generator (``module_fleet.py``: raw
sockets, each session its module's handshake and masked frames, in this process) prints its own
lateness, how far behind its 20 ms schedule a tick's last frame went out, and its CPU. The machine
runs the generator too: read the figures with its CPU in mind. ``--generator picows`` runs the
former generator (one picows client per session) instead; ``--workers`` with no number, the
anchors alone.

  .venv/bin/python bench/audio_stream_load.py --dialect voipbit --sessions 1000
  .venv/bin/python bench/audio_stream_load.py --dialect binary --sessions 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvloop
from module_fleet import Fleet, PicowsFleet, implied_gaps, implied_jitter

from memory_large_file import drop_db, scratch_db

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from servers import process_tree, rss_kib, start_server

GAP_MS: list[int] = []  # per session with false gaps: their total, the last view's
HZ = os.sysconf("SC_CLK_TCK")
ANCHORS = ("picows", "websockets", "uvicorn-sansio", "uvicorn-wsproto")


def cpu_seconds(pid: int) -> float:
    """User+system CPU of ``pid`` and its descendants (``serve --workers N``: supervisor and workers)."""
    total = 0.0
    for each in process_tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        total += (int(fields[11]) + int(fields[12])) / HZ
    return total


def tree_rss_kib(pid: int) -> int:
    return sum(rss_kib(each) for each in process_tree(pid))


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else 0.0


@dataclass
class Target:
    name: str
    pid: int
    ws_base: str
    http: str | None  # media-mgr's HTTP base: its view of the sessions


async def server_view(url: str, workers: int, *, full: bool = True) -> tuple[list[float], int, int]:
    """Per-session jitter, the gaps the server inferred (false ones: the load has none), sessions.

    Each worker lists its own sessions with their figures, the others' as their rows say: ``full``
    asks until every worker has answered once (a new connection each time), else one answer counts
    the active sessions. ([], 0, -1) when the server does not answer."""
    global GAP_MS
    live: dict[str, dict[str, Any]] = {}
    seen: set[object] = set()
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            for _ in range(4 * workers if full else 1):
                r = await http.get(f"{url}/v1/streams", headers={"connection": "close"})
                if r.status_code != 200:
                    print(
                        f"# GET /v1/streams answered {r.status_code}: {r.text[:200]}",
                        file=sys.stderr,
                        flush=True,
                    )
                    continue
                streams = [s for s in r.json()["streams"] if s["kind"] == "audio_stream"]
                if not full:
                    return [], 0, sum(1 for s in streams if s.get("state") == "active")
                for s in streams:
                    if "jitter_ms" in s:
                        live[s["id"]] = s
                        seen.add(s.get("instance_id"))
                if len(seen) >= workers:
                    break
    except httpx.HTTPError as exc:
        print(f"# GET /v1/streams failed: {exc!r}", file=sys.stderr, flush=True)
        return [], 0, -1
    GAP_MS = [int(s["gap_ms"]) for s in live.values() if s["gaps"]]
    return (
        [float(s["jitter_ms"]) for s in live.values()],
        sum(int(s["gaps"]) for s in live.values()),
        len(live),
    )


async def measure(target: Target, args: argparse.Namespace, workers: int = 1) -> dict[str, object]:
    base_rss = tree_rss_kib(target.pid)
    fleet = (PicowsFleet if getattr(args, "generator", "raw") == "picows" else Fleet)(
        target.ws_base, args.dialect
    )
    started = time.monotonic()
    await fleet.add(args.sessions)
    connected = time.monotonic() - started
    ticker = asyncio.create_task(fleet.run())
    recording, opened_after = -1, None
    if target.http is not None:  # every session recording (each opened a recording in the database)
        while time.monotonic() - started - connected < 20:  # polled lightly: the generator shares this loop
            await asyncio.sleep(1)
            recording = (await server_view(target.http, workers, full=False))[2]
            if recording >= args.sessions:
                opened_after = round(time.monotonic() - started - connected, 1)
                break
    await asyncio.sleep(args.settle)  # and what queued while recordings opened, handled
    fleet.late.clear()
    sent0, cpu0, t0, gen0 = fleet.sent, cpu_seconds(target.pid), time.monotonic(), time.process_time()
    window_began = asyncio.get_running_loop().time()  # the clock the generator's passes are on
    await asyncio.sleep(args.window)
    sent1, cpu1, t1, gen1 = fleet.sent, cpu_seconds(target.pid), time.monotonic(), time.process_time()
    late = [1000 * x for x in fleet.late]
    row: dict[str, object] = {
        "server": target.name,
        "sessions": args.sessions,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "connect_s": round(connected, 1),
        "cpu_pct": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
        "cpu_us_per_frame": round(1e6 * (cpu1 - cpu0) / max(1, sent1 - sent0), 1),
        "frames_per_s": round((sent1 - sent0) / (t1 - t0)),
        "kib_per_session": round((tree_rss_kib(target.pid) - base_rss) / args.sessions, 1),
        "gen_late_p95_ms": round(p95(late), 1),
        "gen_cpu_pct": round(100 * (gen1 - gen0) / (t1 - t0), 1),
        "gen_late_max_ms": round(max(late, default=0.0), 1),
    }
    passes = getattr(fleet, "passes", None)
    if passes is not None:  # sessions first, in the middle and last in each pass
        row["gen_implied_gaps"] = [implied_gaps(passes, at) for at in (0.0, 0.5, 1.0)]
        row["gen_implied_jitter_p95_ms"] = [
            round(implied_jitter(passes, at, window_began), 2) for at in (0.0, 0.5, 1.0)
        ]
    if target.http is not None:
        jitter, gaps, live = await server_view(target.http, workers)
        answered = live >= 0  # else the server did not answer: no figure, rather than a 0 that reads as one
        row |= {"false_gap_ms_median": float(np.median(GAP_MS)) if GAP_MS else 0, "all_recording_after_s": opened_after, "live": live,
                "jitter_p95_ms": round(p95(jitter), 2) if answered else None,
                "false_gaps": gaps if answered else None}  # fmt: skip
    ticker.cancel()
    fleet.close()
    await asyncio.sleep(1)
    return row


def start_anchor(stack: str) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("ws_bare_server.py")), stack],
                            stdout=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("listening "):
        proc.kill()
        raise RuntimeError(f"{stack} anchor did not start: {line!r}")
    return proc, int(line.split()[1])


def run_anchor(stack: str, args: argparse.Namespace) -> dict[str, object]:
    proc, port = start_anchor(stack)
    try:
        time.sleep(0.5)
        return uvloop.run(
            measure(Target(f"bare {stack}", proc.pid, f"ws://127.0.0.1:{port}/audio_stream", None), args)
        )
    finally:
        proc.kill()
        proc.wait()


def run_media_mgr(
    listener: str, args: argparse.Namespace, dsn: str | None, workers: int = 1
) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"MEDIA_MGR_DATA_DIR": tmp, "MEDIA_MGR_LOG_LEVEL": "warning", "MEDIA_MGR_WORKERS": str(workers),
               "MEDIA_MGR_LIMIT_WS_SESSIONS": "10000", "MEDIA_MGR_LIMIT_WS_LOOP_LAG_MS": "60000"}  # fmt: skip
        if dsn:
            env["MEDIA_MGR_DATABASE_URL"] = dsn
        log = Path(tempfile.gettempdir()) / f"audio_stream_load_{args.dialect}_{listener}.log"
        srv = start_server(env, log, ws_listener=listener)
        try:
            port = srv.ws_port if listener == "own" else srv.port
            name = "media-mgr " + ("listener (picows)" if listener == "own" else "HTTP port (uvicorn sansio)")
            name += f", {workers} worker(s)"
            target = Target(name, srv.proc.pid, f"ws://127.0.0.1:{port}/audio_stream", srv.url)
            return uvloop.run(measure(target, args, workers))
        finally:
            srv.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialect", choices=["voipbit", "binary"], default="voipbit")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--window", type=float, default=8.0, help="seconds measured per server")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--anchors", nargs="*", default=list(ANCHORS), choices=ANCHORS)
    parser.add_argument("--http-port-too", action="store_true", help="media-mgr's HTTP-port route as well")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--generator", choices=["raw", "picows"], default="raw",
                        help="raw sockets, frames built per tick in one array (module_fleet.Fleet), or the former "
                        "one picows client per session")  # fmt: skip
    parser.add_argument("--workers", type=int, nargs="*", default=[1],
                        help="media-mgr serve --workers, each (none: the anchors alone)")  # fmt: skip
    args = parser.parse_args()
    logging.getLogger("picows").setLevel(logging.ERROR)  # the generator's own "writing paused" lines
    print(f"# {args.dialect}, 8 kHz, one track, {args.sessions} sessions, {os.cpu_count()} cores, "
          f"load generator in this process; {args.window:.0f} s window per server", flush=True)  # fmt: skip
    rows = [run_anchor(stack, args) for stack in args.anchors]
    for row in rows:
        print(json.dumps(row), flush=True)
    dsn = asyncio.run(scratch_db(args.pg))
    ours: list[dict[str, object]] = []
    try:
        for workers in args.workers:
            for listener in ["own", "http"] if args.http_port_too else ["own"]:
                row = run_media_mgr(listener, args, dsn, workers)
                print(json.dumps(row), flush=True)
                ours.append(row)
    finally:
        asyncio.run(drop_db(args.pg, dsn))
    for row in ours:
        print(f"# {row['server']}: {row['cpu_pct']} % of a core for {args.sessions} sessions recorded, server "
              f"p95 jitter {row.get('jitter_p95_ms')} ms, {row.get('false_gaps')} false gaps, "
              f"{row['kib_per_session']} KiB per session; load generator p95 lateness {row['gen_late_p95_ms']} ms")  # fmt: skip


if __name__ == "__main__":
    main()
