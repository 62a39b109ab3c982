"""WAV and MP3 serving throughput with 200 concurrent clients (wrk), beside a reference.

The reference, measured in the same run on the same machine, is the ceiling of the stack we
build on: a bare uvicorn (httptools, uvloop, one process) app that returns the same bytes from
memory. media-mgr serves them from PostgreSQL in 256 KiB chunks, verifying a signed URL first.
Run: .venv/bin/python bench/stream_throughput.py  (needs wrk: apt-get install wrk)
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from memory_large_file import drop_db, scratch_db
from servers import start_server
from sounds import mp3, tone

REFERENCE_APP = textwrap.dedent("""
    import sys
    body = open(sys.argv[1], "rb").read()
    ctype = sys.argv[2].encode()
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    import uvicorn
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), loop="uvloop", http="httptools",
                log_level="warning", access_log=False)
""")


def wrk(url: str, connections: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(\w+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def ms(m: re.Match[str] | None) -> float:
        assert m
        value, unit = float(m.group(1)), m.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "rps": rps,
        "p50_ms": ms(p50),
        "p99_ms": ms(p99),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = {"wav": tone(work / "prompt.wav", rate=8000, seconds=10),
                 "mp3": mp3(work / "prompt.mp3", rate=8000, seconds=10)}  # fmt: skip
        env = {"MEDIA_MGR_DATA_DIR": str(work / "data"), "MEDIA_MGR_LOG_LEVEL": "warning"}
        dsn = asyncio.run(scratch_db(args.pg))
        if dsn:
            env["MEDIA_MGR_DATABASE_URL"] = dsn
        srv = start_server(env, work / "server.log", timeout=120)
        rows: list[tuple[str, int, dict[str, float], dict[str, float]]] = []
        try:
            for fmt, path in files.items():
                with path.open("rb") as f:
                    item = httpx.post(f"{srv.url}/v1/media", files={"file": (path.name, f)}).json()
                issued = httpx.post(f"{srv.url}/v1/stream-urls", json={"media_name": item["media_name"]})
                url = issued.json()["stream_url"]
                ours = wrk(url, args.connections, args.seconds)
                ctype = "audio/wav" if fmt == "wav" else "audio/mpeg"
                app = subprocess.Popen([sys.executable, "-c", REFERENCE_APP, str(path), ctype, "18931"])
                time.sleep(1.5)
                try:
                    reference = wrk("http://127.0.0.1:18931/x", args.connections, args.seconds)
                finally:
                    app.terminate()
                    app.wait()
                rows.append((fmt, path.stat().st_size, ours, reference))
        finally:
            srv.stop()
            asyncio.run(drop_db(args.pg, dsn))
    print(f"{args.connections} connections, {args.seconds} s each, wrk -t2 on the same 2-core machine")
    print("| body | size | media-mgr req/s | p50 | p99 | reference req/s | p50 | p99 |")
    print("|---|---|---|---|---|---|---|---|")
    for fmt, size, ours, ref in rows:
        print(f"| {fmt} | {size // 1024} KiB | {ours['rps']:.0f} ({ours['rps'] * size / 2**20:.0f} MiB/s) "
              f"| {ours['p50_ms']:.1f} ms | {ours['p99_ms']:.1f} ms | {ref['rps']:.0f} "
              f"({ref['rps'] * size / 2**20:.0f} MiB/s) | {ref['p50_ms']:.1f} ms | {ref['p99_ms']:.1f} ms |")  # fmt: skip
        if ours["errors"]:
            print(f"  media-mgr non-2xx responses: {ours['errors']:.0f}")


if __name__ == "__main__":
    main()
