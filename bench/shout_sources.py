"""Concurrent real-time SHOUT sources: media-mgr (recording every byte into PostgreSQL) beside icecast2
(relaying only), fed the same way in the same run, on the same machine, one after the other.

Each source is paced as mod_shout's write thread paces one (a burst of due frames every 100 ms) and
sends MP3 as an 8 kHz call gives it (MPEG-2.5, 16 kbit/s). Reported: CPU per source (user + system
of the server process over the steady window), PostgreSQL's CPU for media-mgr's writes (its backends
for the bench database), and bytes lost (sent minus stored, must be 0).
Run: .venv/bin/python bench/shout_sources.py --sources 100 200 400 800 1600 [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import uvloop
from shout_harness import (
    SourceResult,
    bench_audio,
    bench_icecast,
    cleanup,
    cpu_seconds,
    media_mgr,
    paced_source,
    scratch_database,
    workdir,
)


async def run_sources(port: int, creds: list[tuple[str, str, str]], frames: list[bytes], frame_s: float,
                      seconds: float, pid: int, db: str | None = None) -> tuple[list[SourceResult], float, float]:  # fmt: skip
    """Start the sources in ramps (10 every 100 ms), measure the server's CPU over the steady part."""
    results = [SourceResult(mount) for mount, _, _ in creds]
    tasks = []
    loop = asyncio.get_running_loop()
    end = loop.time() + len(creds) / 100 + seconds  # every source streams until the same end
    for i, (mount, user, password) in enumerate(creds):
        tasks.append(asyncio.create_task(paced_source(port, mount, user, password, frames, frame_s,
                                                      end - loop.time(), results[i])))  # fmt: skip
        if i % 10 == 9:
            await asyncio.sleep(0.1)
    await asyncio.sleep(3)  # everyone connected and flowing
    backends = pg_backends(db) if db else []
    cpu0, pg0, t0 = cpu_seconds(pid), pg_cpu(backends), time.monotonic()
    await asyncio.sleep(max(seconds - 8, 5))
    cpu1, pg1, t1 = cpu_seconds(pid), pg_cpu(backends), time.monotonic()
    await asyncio.gather(*tasks)
    return results, (cpu1 - cpu0) / (t1 - t0), (pg1 - pg0) / (t1 - t0)


def pg_backends(db: str) -> list[int]:
    """The PostgreSQL backends serving the bench database (the server's pool)."""
    out = subprocess.run(["psql", db, "-tAc", "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                          " AND pid <> pg_backend_pid()"], capture_output=True, text=True, check=True)  # fmt: skip
    return [int(p) for p in out.stdout.split()]


def pg_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


def media_mgr_round(
    n: int, seconds: float, frames: list[bytes], frame_s: float, db: str, tmp: Path, workers: int = 1
) -> dict[str, float]:
    srv, port = media_mgr(db, tmp, f"sources{n}w{workers}", MEDIA_MGR_WORKERS=str(workers))
    try:
        recs = [httpx.post(f"{srv.url}/v1/recordings", json={}, timeout=30).json() for _ in range(n)]
        creds = []
        for rec in recs:
            url = urlsplit(rec["shout_url"].replace("shout://", "http://"))
            creds.append((url.path, url.username or "", url.password or ""))
        results, cores, pg = asyncio.run(run_sources(port, creds, frames, frame_s, seconds, srv.proc.pid, db))
        time.sleep(2)
        stored, complete = 0, 0
        for rec in recs:
            got = httpx.get(f"{srv.url}/v1/recordings/{rec['id']}", timeout=30).json()
            stored += got["size"]
            complete += got["state"] == "complete"
        sent = sum(r.sent for r in results)
        failed = [r.error for r in results if not r.ok]
        return {"sources": n, "connected_ok": n - len(failed), "complete": complete, "cpu_cores": cores, "pg": pg,
                "cpu_ms_per_source_s": cores * 1000 / n, "sent": sent, "lost": sent - stored,
                "errors": len(failed)}  # fmt: skip
    finally:
        srv.stop()


def icecast_round(n: int, seconds: float, frames: list[bytes], frame_s: float) -> dict[str, float]:
    ice = bench_icecast(n)
    try:
        assert ice.proc is not None
        creds = [(f"/bench{i}.mp3", "source", ice.source_password) for i in range(n)]
        results, cores, _ = asyncio.run(run_sources(ice.port, creds, frames, frame_s, seconds, ice.proc.pid))
        failed = [r.error for r in results if not r.ok]
        return {"sources": n, "connected_ok": n - len(failed), "cpu_cores": cores,
                "cpu_ms_per_source_s": cores * 1000 / n, "sent": sum(r.sent for r in results),
                "errors": len(failed)}  # fmt: skip
    finally:
        ice.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, nargs="+", default=[100, 200, 400])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=1, help="media-mgr serve --workers")
    args = parser.parse_args()
    uvloop.install()
    tmp = workdir()
    try:
        frames, frame_s = bench_audio(tmp, 8000, "16k", 20.0)
        with scratch_database() as db:
            rounds(args, frames, frame_s, db, tmp)
    finally:
        cleanup(tmp)


def rounds(args: argparse.Namespace, frames: list[bytes], frame_s: float, db: str, tmp: Path) -> None:
    print(f"{'server':10} {'sources':>7} {'ok':>5} {'complete':>8} {'CPU %core':>9} {'ms CPU/source/s':>15} "
          f"{'PG %core':>8} {'sent B':>10} {'lost B':>7}")  # fmt: skip
    for n in args.sources:
        for name, row in (("media-mgr", media_mgr_round(n, args.seconds, frames, frame_s, db, tmp, args.workers)),
                          ("icecast2", icecast_round(n, args.seconds, frames, frame_s))):  # fmt: skip
            print(f"{name:10} {row['sources']:>7} {row['connected_ok']:>5} {row.get('complete', '-'):>8} "
                  f"{row['cpu_cores'] * 100:>9.1f} {row['cpu_ms_per_source_s']:>15.3f} "
                  f"{'-' if 'pg' not in row else format(row['pg'] * 100, '.1f'):>8} {row['sent']:>10} "
                  f"{row.get('lost', '-'):>7}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
