"""1000 live listeners on one mount: media-mgr beside icecast2, fed the same way in the same run.

One real-time source (128 kbit/s MP3, paced as mod_shout paces, every 100 ms) per server; listeners send
mod_shout's GET and connect in ramps of 20 every 50 ms (Icecast's listen backlog is 5). Over a steady
window: the server's CPU (user + system, /proc), each listener's bytes against what the source sent in
the same window (bytes lost: a listener that keeps up gets them all), listeners dropped or ended early.
Run: .venv/bin/python bench/shout_listeners.py [--listeners 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from urllib.parse import urlsplit

import httpx
import uvloop
from shout_harness import (
    LagProbe,
    ListenerResult,
    SourceResult,
    bench_audio,
    bench_icecast,
    cleanup,
    cpu_split,
    listener,
    machine_busy,
    media_mgr,
    paced_source,
    scratch_database,
    workdir,
)


async def run(port: int, mount: str, user: str, password: str, frames: list[bytes], frame_s: float, n: int,
              window: float, pid: int, profile: str = "") -> dict[str, float]:  # fmt: skip
    loop = asyncio.get_running_loop()
    total = 4 + n / 400 + window + 4
    src = SourceResult(mount)
    source = asyncio.create_task(paced_source(port, mount, user, password, frames, frame_s, total + 2, src))
    await asyncio.sleep(1.0)
    until = loop.time() + total
    results = [ListenerResult() for _ in range(n)]
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(listener(port, mount, until, results[i])))
        if i % 20 == 19:
            await asyncio.sleep(0.05)
    await asyncio.sleep(3)  # all connected, bursts delivered
    probe = LagProbe()
    probe.start()
    got0, sent0, (user0, sys0), t0 = [r.got for r in results], src.sent, cpu_split(pid), time.monotonic()
    busy0 = machine_busy()
    if profile:  # perf samples of the server over the window (kernel and C; Python shows as the eval loop)
        perf = await asyncio.create_subprocess_exec("perf", "record", "-g", "-o", profile, "-p", str(pid),
                                                    "--", "sleep", str(window))  # fmt: skip
    await asyncio.sleep(window)
    got1, sent1, (user1, sys1), t1 = [r.got for r in results], src.sent, cpu_split(pid), time.monotonic()
    busy1 = machine_busy()
    lag_p99, lag_max = probe.stop()
    if profile:
        await perf.wait()
    await asyncio.gather(*tasks)
    await source
    published = sent1 - sent0
    window_bytes = [b - a for a, b in zip(got0, got1, strict=True)]
    short = [max(published - w, 0) for w in window_bytes]
    # A listener reads a little behind the source: allow one 100 ms burst of slack either side of the window.
    slack = int(published / window * 0.2)
    return {
        "listeners": n,
        "connected": sum(1 for r in results if not r.error),
        "ended_early": sum(1 for r in results if r.ended_early),
        "cpu_cores": (user1 + sys1 - user0 - sys0) / (t1 - t0),
        "user_cores": (user1 - user0) / (t1 - t0),
        "machine_busy": (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1),
        "gen_lag_p99_ms": lag_p99,
        "gen_lag_max_ms": lag_max,
        "kbit_median": statistics.median(window_bytes) * 8 / 1000 / (t1 - t0),
        "kbit_min": min(window_bytes) * 8 / 1000 / (t1 - t0),
        "lost_bytes": sum(s for s in short if s > slack),
        "source_kbit": published * 8 / 1000 / (t1 - t0),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--perf", default="", help="record media-mgr's window with perf into this file")
    args = parser.parse_args()
    uvloop.install()
    tmp = workdir()
    try:
        frames, frame_s = bench_audio(tmp, 44100, "128k", 20.0)
        rows = []
        with scratch_database() as db:
            srv, port = media_mgr(
                db, tmp, "listeners", MEDIA_MGR_SHOUT_MAX_CONNECTIONS=str(args.listeners + 100)
            )
            try:
                rec = httpx.post(f"{srv.url}/v1/recordings", json={}, timeout=30).json()
                url = urlsplit(rec["shout_url"].replace("shout://", "http://"))
                rows.append(("media-mgr", asyncio.run(run(port, url.path, url.username or "", url.password or "",
                                                          frames, frame_s, args.listeners, args.seconds,
                                                          srv.proc.pid, args.perf))))  # fmt: skip
            finally:
                srv.stop()
        ice = bench_icecast(1, args.listeners)
        try:
            assert ice.proc is not None
            rows.append(("icecast2", asyncio.run(run(ice.port, "/bench.mp3", "source", ice.source_password, frames,
                                                     frame_s, args.listeners, args.seconds, ice.proc.pid))))  # fmt: skip
        finally:
            ice.close()
        print(f"{'server':10} {'listeners':>9} {'connected':>9} {'ended early':>11} {'CPU %core':>9} {'user %':>6} "
              f"{'us CPU/listener/s':>17} {'kbit/s median':>13} {'kbit/s min':>10} {'source kbit/s':>13} {'lost B':>7} "
              f"{'machine busy %':>14} {'gen lag p99/max ms':>18}")  # fmt: skip
        for name, r in rows:
            print(f"{name:10} {r['listeners']:>9} {r['connected']:>9} {r['ended_early']:>11} {r['cpu_cores'] * 100:>9.1f} "
                  f"{r['user_cores'] * 100:>6.1f} {r['cpu_cores'] * 1e6 / r['listeners']:>17.1f} "
                  f"{r['kbit_median']:>13.1f} {r['kbit_min']:>10.1f} {r['source_kbit']:>13.1f} {r['lost_bytes']:>7} "
                  f"{r['machine_busy'] * 100:>14.0f} {r['gen_lag_p99_ms']:>9.1f}/{r['gen_lag_max_ms']:<8.1f}")  # fmt: skip
        if len(rows) == 2:
            print(
                f"media-mgr CPU / icecast2 CPU: {rows[0][1]['cpu_cores'] / max(rows[1][1]['cpu_cores'], 1e-9):.2f}x"
            )
    finally:
        cleanup(tmp)


if __name__ == "__main__":
    main()
