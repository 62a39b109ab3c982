"""Peak resident memory of `media-mgr serve` while a 200 MB file is uploaded and downloaded.

Reference in the same run: the same server's peak after start-up and a few small requests, so
the figure shows what the large file added. Run: .venv/bin/python bench/memory_large_file.py
(uses the machine's PostgreSQL at 127.0.0.1:5432 with a scratch database, else the embedded one).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from servers import peak_rss_kib, start_server


async def scratch_db(admin: str) -> str | None:
    try:
        conn = await asyncpg.connect(admin, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    name = f"mmbench_{int(time.time())}_{secrets.token_hex(3)}"  # two benches started together differ
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return admin.rsplit("/", 1)[0] + "/" + name


async def drop_db(admin: str, dsn: str | None) -> None:
    """Drop a scratch database made by ``scratch_db``: a bench leaves nothing behind."""
    if dsn is None:
        return
    conn = await asyncpg.connect(admin, timeout=3)
    await conn.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        big = work / "big.wav"
        seconds = args.mb * 1024 * 1024 // (48000 * 4)
        subprocess.run(["sox", "-n", "-r", "48000", "-c", "2", "-b", "16", str(big), "synth", str(seconds),
                        "whitenoise", "gain", "-10"], check=True)  # fmt: skip
        env = {"MEDIA_MGR_DATA_DIR": str(work / "data")}
        dsn = asyncio.run(scratch_db(args.pg))
        if dsn:
            env["MEDIA_MGR_DATABASE_URL"] = dsn
        srv = start_server(env, work / "server.log", timeout=120)
        try:
            for _ in range(5):
                httpx.get(f"{srv.url}/v1/media")
            idle = peak_rss_kib(srv.proc.pid)

            def body() -> Iterator[bytes]:
                with big.open("rb") as f:
                    while piece := f.read(1 << 20):
                        yield piece

            t0 = time.perf_counter()
            item = httpx.post(f"{srv.url}/v1/media", content=body(), timeout=600).json()
            up_s = time.perf_counter() - t0
            after_upload = peak_rss_kib(srv.proc.pid)
            digest = hashlib.sha256()
            t0 = time.perf_counter()
            with httpx.stream("GET", f"{srv.url}/v1/media/{item['id']}/content", timeout=600) as r:
                for piece in r.iter_bytes():
                    digest.update(piece)
            down_s = time.perf_counter() - t0
            after_download = peak_rss_kib(srv.proc.pid)
            assert digest.hexdigest() == item["sha256"]
        finally:
            srv.stop()
            asyncio.run(drop_db(args.pg, dsn))
    size_mb = big.stat().st_size / 2**20 if big.exists() else args.mb
    print(f"file: {size_mb:.0f} MiB WAV; database: {'external' if dsn else 'embedded'}")
    print(f"peak RSS after start-up and small requests (reference): {idle / 1024:.1f} MiB")
    print(f"peak RSS after the upload:   {after_upload / 1024:.1f} MiB (+{(after_upload - idle) / 1024:.1f})"
          f"  upload {args.mb / up_s:.0f} MiB/s")  # fmt: skip
    print(f"peak RSS after the download: {after_download / 1024:.1f} MiB (+{(after_download - idle) / 1024:.1f})"
          f"  download {args.mb / down_s:.0f} MiB/s")  # fmt: skip


if __name__ == "__main__":
    main()
