"""Concurrent real-time SHOUT sources: media-mgr (recording every byte into PostgreSQL) beside icecast2
(relaying only), fed the same way in the same run, on the same machine, one after the other.

Each source is paced as mod_shout's write thread paces one (a burst of due frames every 100 ms) and
sends MP3 as an 8 kHz call gives it (MPEG-2.5, 16 kbit/s). Reported: CPU per source (user + system
of the server process over the steady window), PostgreSQL's CPU for media-mgr's writes (its backends
for the bench database), and, per source, whether the stored recording is byte for byte what that
source sent (a source sends the bench's frames in a known order, so what it sent is rebuilt from its
count): ``lost B`` sums the bytes missing, ``bad`` counts recordings that differ in any way. Beside
them: how busy the whole machine was, and the load generator's own lateness (a 10 ms timer's).
Run: .venv/bin/python bench/shout_sources.py --sources 100 200 400 800 1600 [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvloop
from shout_harness import (
    LagProbe,
    SourceResult,
    bench_audio,
    bench_icecast,
    cleanup,
    cpu_seconds,
    machine_busy,
    media_mgr,
    paced_source,
    scratch_database,
    sent_bytes,
    workdir,
)


async def run_sources(port: int, creds: list[tuple[str, str, str]], frames: list[bytes], frame_s: float,
                      seconds: float, pid: int, db: str | None = None) -> tuple[list[SourceResult], dict[str, float]]:  # fmt: skip
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
    probe = LagProbe()
    probe.start()
    cpu0, pg0, t0, busy0 = cpu_seconds(pid), pg_cpu(backends), time.monotonic(), machine_busy()
    await asyncio.sleep(max(seconds - 8, 5))
    cpu1, pg1, t1, busy1 = cpu_seconds(pid), pg_cpu(backends), time.monotonic(), machine_busy()
    lag_p99, lag_max = probe.stop()
    await asyncio.gather(*tasks)
    return results, {"cpu_cores": (cpu1 - cpu0) / (t1 - t0), "pg": (pg1 - pg0) / (t1 - t0),
                     "busy": (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1), "lag_p99": lag_p99,
                     "lag_max": lag_max}  # fmt: skip


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
    n: int,
    seconds: float,
    frames: list[bytes],
    frame_s: float,
    db: str,
    tmp: Path,
    workers: int = 1,
    log_level: str = "warning",
) -> dict[str, float]:
    srv, port = media_mgr(db, tmp, f"sources{n}w{workers}", MEDIA_MGR_WORKERS=str(workers),
                          MEDIA_MGR_SHOUT_MAX_CONNECTIONS=str(n + 100), MEDIA_MGR_LOG_LEVEL=log_level)  # fmt: skip
    try:
        recs = asyncio.run(create_recordings(srv.url, n))
        progress(f"media-mgr: {n} recordings created; sources start")
        creds = []
        for rec in recs:
            url = urlsplit(rec["shout_url"].replace("shout://", "http://"))
            creds.append((url.path, url.username or "", url.password or ""))
        results, row = asyncio.run(run_sources(port, creds, frames, frame_s, seconds, srv.proc.pid, db))
        progress(
            f"media-mgr: sources done ({sum(not r.ok for r in results)} failed); checking what was stored"
        )
        for text, count in Counter(r.error for r in results if not r.ok).most_common(5):
            progress(f"source failed: {count} x {text}")
        waits = sorted(r.answered for r in results if r.answered)
        if waits:
            progress(f"SOURCE answered in p50 {waits[len(waits) // 2]:.2f} s, p99 {waits[int(len(waits) * 0.99)]:.2f} s, "
                     f"max {waits[-1]:.2f} s")  # fmt: skip
        checked = asyncio.run(check_stored(srv.url, recs, results, frames))
        log_summary(srv.log_path)
        kept = Path(tempfile.gettempdir()) / f"shout-sources-{n}.log"
        shutil.copy(srv.log_path, kept)
        progress(f"media-mgr's log: {kept}")
        failed = [r.error for r in results if not r.ok]
        return {"sources": n, "connected_ok": n - len(failed), **checked, **row,
                "cpu_ms_per_source_s": row["cpu_cores"] * 1000 / n, "sent": sum(r.sent for r in results),
                "errors": len(failed)}  # fmt: skip
    finally:
        srv.stop()


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def log_summary(path: Path) -> None:
    """The server's warnings and errors, counted by message (the bench runs it at level warning)."""
    counts: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("level") in ("warning", "error", "critical"):
                counts[f"{entry['level']}: {entry.get('msg')} {entry.get('error', '')}"[:200]] += 1
    for text, count in counts.most_common(10):
        progress(f"server log: {count} x {text}")


async def create_recordings(base: str, n: int) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        gate = asyncio.Semaphore(20)

        async def one() -> dict[str, Any]:
            async with gate:
                r = await client.post("/v1/recordings", json={})
                r.raise_for_status()
                return r.json()  # type: ignore[no-any-return]

        return await asyncio.gather(*(one() for _ in range(n)))


async def check_stored(
    base: str, recs: list[dict[str, Any]], results: list[SourceResult], frames: list[bytes]
) -> dict[str, float]:
    """Each recording against what its source sent, byte for byte, once every one is closed."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        gate = asyncio.Semaphore(20)

        deadline = asyncio.get_running_loop().time() + 30  # every recording closed within 30 s of the end

        async def one(rec: dict[str, Any], result: SourceResult) -> tuple[int, bool, bool]:
            if not result.ok:  # counted among the errors; what it stored is not compared
                return 0, True, False
            async with gate:
                while True:
                    state = (await client.get(f"/v1/recordings/{rec['id']}")).json()["state"]
                    if state not in ("pending", "recording") or asyncio.get_running_loop().time() > deadline:
                        break
                    await asyncio.sleep(0.1)
                for attempt in range(3):  # a connection dropped under load is tried again
                    try:
                        stored = (await client.get(f"/v1/recordings/{rec['id']}/content")).content
                        break
                    except httpx.TransportError:
                        if attempt == 2:
                            raise
            expected = sent_bytes(frames, result.frames)
            assert len(expected) == result.sent
            return max(len(expected) - len(stored), 0), stored == expected, state == "complete"

        checks = await asyncio.gather(*(one(rec, r) for rec, r in zip(recs, results, strict=True)))
    return {"lost": sum(c[0] for c in checks), "bad": sum(not c[1] for c in checks),
            "complete": sum(c[2] for c in checks)}  # fmt: skip


def icecast_round(n: int, seconds: float, frames: list[bytes], frame_s: float) -> dict[str, float]:
    ice = bench_icecast(n)
    try:
        assert ice.proc is not None
        creds = [(f"/bench{i}.mp3", "source", ice.source_password) for i in range(n)]
        results, row = asyncio.run(run_sources(ice.port, creds, frames, frame_s, seconds, ice.proc.pid))
        failed = [r.error for r in results if not r.ok]
        return {"sources": n, "connected_ok": n - len(failed), **row, "sent": sum(r.sent for r in results),
                "cpu_ms_per_source_s": row["cpu_cores"] * 1000 / n, "errors": len(failed)}  # fmt: skip
    finally:
        ice.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, nargs="+", default=[100, 200, 400])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=1, help="media-mgr serve --workers")
    parser.add_argument("--log-level", default="warning", help="media-mgr's (its log is kept: see the end)")
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
          f"{'PG %core':>8} {'sent B':>10} {'lost B':>7} {'bad':>4} {'machine busy %':>14} "
          f"{'gen lag p99/max ms':>18}")  # fmt: skip
    for n in args.sources:
        for name, row in (("media-mgr", media_mgr_round(n, args.seconds, frames, frame_s, db, tmp, args.workers,
                                                        args.log_level)),
                          ("icecast2", icecast_round(n, args.seconds, frames, frame_s))):  # fmt: skip
            print(f"{name:10} {row['sources']:>7} {row['connected_ok']:>5} {row.get('complete', '-'):>8} "
                  f"{row['cpu_cores'] * 100:>9.1f} {row['cpu_ms_per_source_s']:>15.3f} "
                  f"{'-' if name != 'media-mgr' else format(row['pg'] * 100, '.1f'):>8} {row['sent']:>10} "
                  f"{row.get('lost', '-'):>7} {row.get('bad', '-'):>4} {row['busy'] * 100:>14.0f} "
                  f"{row['lag_p99']:>9.1f}/{row['lag_max']:<8.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
