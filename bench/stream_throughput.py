"""A prompt fetched through its per-request stream URL by 200 connections (wrk), beside two anchors.

In one run, on the same file (a 10 s 8 kHz WAV, 156 KiB) and the same machine, each for the same
time after a short warm-up:

- nginx, ``sendfile on``, access log off, with as many workers as media-mgr has (1 unless
  ``--workers``): what a static file server does with the same cores;
- a bare uvicorn (httptools, uvloop, one process) returning the bytes from memory: the ceiling of
  the stack media-mgr is built on;
- media-mgr (``--workers N`` sets ``MEDIA_MGR_WORKERS``; ``--server-url`` measures a server
  already running instead, e.g. one with every core);
- with ``--baseline DIR``, also media-mgr from another source tree (before/after in one run:
  ``git worktree add /tmp/base main``, then ``--baseline /tmp/base``), run with this venv.

Each line gives requests/s, p50/p99 latency, non-2xx answers, and the CPU seconds the server used
per 1000 requests (steadier than requests/s on a shared machine; with ``--rounds`` their median per
server closes the report), plus the CPU wrk itself used: on
2 cores wrk competes with the server, so its share is the load generator's own cost. Every wrk run
opens its 200 connections anew, after a warm-up run of its own. The last lines set media-mgr against
the nginx measured right after it, with issue 10's targets: one worker >= 40 % of nginx's
requests/s with a p99 at most 3x nginx's; with every core (``--workers 2``, against nginx with 2
workers) >= 80 %. ``--rounds N``
alternates media-mgr and nginx N times and takes the median ratio (for a loaded machine).
The bare uvicorn anchor takes connections as uvloop does, one per loop iteration: its p99 includes
the last clients' wait to be let in, which media-mgr no longer has (``http.accept``).
Run: .venv/bin/python bench/stream_throughput.py [--workers 2] [--seconds 10] [--rounds 3]
[--formats wav,mp3] [--baseline DIR]
(needs nginx and wrk: scripts/test installs both).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from memory_large_file import drop_db, scratch_db
from servers import start_server
from sounds import mp3, tone

CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

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

NGINX_CONF = """
{user}
worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 60;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ audio/wav wav; audio/mpeg mp3; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: str
    server_cpu_s: float | None
    wrk_cpu_s: float
    requests: int

    def line(self, name: str, size: int) -> str:
        per_k = (
            f"{1000 * self.server_cpu_s / self.requests:.3f} s"
            if self.server_cpu_s and self.requests
            else "-"
        )
        return (f"| {name} | {self.rps:,.0f} ({self.rps * size / 2**20:,.0f} MiB/s) | {self.p50_ms:.1f} ms "
                f"| {self.p99_ms:.1f} ms | {self.non_2xx} | {self.socket_errors or '0'} | {per_k} "
                f"| {self.wrk_cpu_s:.1f} s |")  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def tree_cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its live descendants (the workers of a supervisor)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
            cpu[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / ticks
    tree, todo = set(), [pid]
    while todo:
        p = todo.pop()
        tree.add(p)
        todo.extend(c for c, pp in parents.items() if pp == p and c not in tree)
    return sum(cpu.get(p, 0.0) for p in tree)


def wrk(url: str, connections: int, seconds: int, server_pid: int | None) -> Result:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = tree_cpu_seconds(server_pid) if server_pid else None
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    cpu1 = tree_cpu_seconds(server_pid) if server_pid else None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)

    def ms(pattern: str) -> float:
        m = re.search(pattern + r"\s+([\d.]+)(us|ms|s)\b", out)
        assert m, out
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    assert rps, out
    assert total, out
    return Result(
        rps=float(rps.group(1)),
        p50_ms=ms("50%"),
        p99_ms=ms("99%"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=errors.group(1).strip() if errors else "",
        server_cpu_s=(cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
        wrk_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        requests=int(total.group(1)),
    )


def measure(url: str, args: argparse.Namespace, pid: int | None) -> Result:
    wrk(url, args.connections, args.warmup, pid)  # connections opened, caches filled
    return wrk(url, args.connections, args.seconds, pid)


@contextlib.contextmanager
def nginx(root: Path, tmp: Path, workers: int = 1) -> Iterator[tuple[int, int]]:
    port = free_port()
    conf = tmp / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""  # the worker must read the temp dir
    conf.write_text(NGINX_CONF.format(user=user, tmp=tmp, port=port, root=root, workers=workers))
    with serving([NGINX, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")], port) as up:
        yield up


@contextlib.contextmanager
def bare_uvicorn(path: Path, ctype: str) -> Iterator[tuple[int, int]]:
    port = free_port()
    with serving([sys.executable, "-c", REFERENCE_APP, str(path), ctype, str(port)], port) as up:
        yield up


@contextlib.contextmanager
def serving(command: list[str], port: int) -> Iterator[tuple[int, int]]:
    """An anchor server started from ``command``: (port, pid) once it accepts, stopped after."""
    proc = subprocess.Popen(command)
    try:
        wait_port(port)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def media_mgr(
    args: argparse.Namespace, work: Path, source: str | None = None
) -> Iterator[tuple[str, int | None]]:
    """A media-mgr serving (``source``: the tree it runs from, else this one's)."""
    if args.server_url and source is None:
        yield args.server_url.rstrip("/"), None
        return
    work.mkdir(exist_ok=True)
    env = {"MEDIA_MGR_DATA_DIR": str(work / "data"), "MEDIA_MGR_LOG_LEVEL": "warning"}
    prefix = ("env", "-C", source, f"PYTHONPATH={source}") if source is not None else ()
    if args.workers > 1:
        env["MEDIA_MGR_WORKERS"] = str(args.workers)
    dsn = asyncio.run(scratch_db(args.pg))
    if dsn:
        env["MEDIA_MGR_DATABASE_URL"] = dsn
    srv = start_server(env, work / "server.log", timeout=120, prefix=prefix)  # from its tree: its cwd
    try:
        yield srv.url, srv.proc.pid
    finally:
        srv.stop()
        asyncio.run(drop_db(args.pg, dsn))


def stream_url(base: str, path: Path) -> str:
    """Upload ``path``, issue a stream URL for it, check that it plays the same bytes."""
    with path.open("rb") as f:
        item = httpx.post(f"{base}/v1/media", files={"file": (path.name, f)}, timeout=60).json()
    issued = httpx.post(f"{base}/v1/stream-urls", json={"media_name": item["media_name"]})
    url: str = issued.json()["stream_url"]
    check = httpx.get(url)
    assert check.status_code == 200, check.text
    assert check.content == path.read_bytes()
    return url


TARGET_RPS_ONE = 40  # issue 10: one worker >= 40 % of one nginx worker's requests/s ...
TARGET_P99 = 3.0  # ... with a p99 at most 3x nginx's
TARGET_RPS_ALL = 80  # every core (--workers 2 here): >= 80 % of nginx's requests/s


def verdicts(name: str, fmt: str, workers: int, pairs: list[tuple[Result, Result]]) -> list[str]:
    """media-mgr against nginx measured in the same round, per round and their median, with the targets."""
    rps = [100 * ours.rps / ref.rps for ours, ref in pairs]
    p99 = [ours.p99_ms / ref.p99_ms for ours, ref in pairs]
    target = TARGET_RPS_ONE if workers == 1 else TARGET_RPS_ALL
    rps_m, p99_m = statistics.median(rps), statistics.median(p99)
    rounds = f" (rounds: {', '.join(f'{r:.0f} %' for r in rps)}; p99 {', '.join(f'{x:.1f}x' for x in p99)})"
    lines = [f"{name} / nginx ({fmt}): {rps_m:.0f} % of the requests/s, target >= {target} %: "
             f"{'met' if rps_m >= target else 'NOT met'}" + (rounds if len(pairs) > 1 else "")]  # fmt: skip
    p99_line = f"{name} / nginx ({fmt}): p99 {p99_m:.1f}x nginx's"
    if workers == 1:
        p99_line += f", target <= {TARGET_P99:g}x: {'met' if p99_m <= TARGET_P99 else 'NOT met'}"
    return [*lines, p99_line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10, help="each measured wrk run, after the warm-up")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure media-mgr and nginx alternately this many times (a loaded machine)")  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=1, help="media-mgr serve --workers (MEDIA_MGR_WORKERS)"
    )
    parser.add_argument("--server-url", help="measure this running media-mgr instead of starting one")
    parser.add_argument("--formats", default="wav", help="comma-separated: wav, mp3")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--baseline", help="also measure media-mgr from this source tree (e.g. main's)")
    parser.add_argument("--no-uvicorn", action="store_true", help="leave the bare uvicorn anchor out")
    args = parser.parse_args()
    rows: list[tuple[str, str, Result]] = []  # (format, server, result)
    pairs: dict[tuple[str, str], list[tuple[Result, Result]]] = {}  # (format, media-mgr row) -> with nginx
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        files = {"wav": lambda: tone(work / "prompt.wav", rate=8000, seconds=10),
                 "mp3": lambda: mp3(work / "prompt.mp3", rate=8000, seconds=10)}  # fmt: skip
        made = {fmt: files[fmt]() for fmt in args.formats.split(",")}
        sizes = {fmt: path.stat().st_size for fmt, path in made.items()}
        (work / "nginx").mkdir()
        label = "media-mgr" + (f" ({args.workers} workers)" if args.workers > 1 else "")
        ours: list[tuple[str, str, str, int | None]] = []  # (format, name, url, pid)
        if args.baseline:
            base, pid = stack.enter_context(media_mgr(args, work / "baseline", args.baseline))
            for fmt, path in made.items():
                ours.append((fmt, f"{label} from {args.baseline}", stream_url(base, path), pid))
        base, pid = stack.enter_context(media_mgr(args, work / "this"))
        for fmt, path in made.items():
            ours.append(
                (fmt, label if not args.server_url else f"media-mgr at {base}", stream_url(base, path), pid)
            )
        # As many nginx workers as media-mgr has: "with every core" against every core.
        nport, npid = stack.enter_context(nginx(work, work / "nginx", args.workers))
        nginx_label = f"nginx, {args.workers} worker{'s' if args.workers > 1 else ''}, sendfile"
        anchors = {fmt: [(nginx_label, f"http://127.0.0.1:{nport}/{path.name}", npid)]
                   for fmt, path in made.items()}  # fmt: skip
        if not args.no_uvicorn:
            for fmt, path in made.items():
                uport, upid = stack.enter_context(bare_uvicorn(path, CONTENT_TYPES[fmt]))
                anchors[fmt].append(("bare uvicorn, bytes from memory", f"http://127.0.0.1:{uport}/x", upid))
        for _ in range(args.rounds):
            for fmt in made:
                measured = {name: measure(url, args, p) for f, name, url, p in ours if f == fmt}
                nginx_name, nginx_url, nginx_pid = anchors[fmt][0]
                reference = measure(nginx_url, args, nginx_pid)
                for name, result in measured.items():
                    rows.append((fmt, name, result))
                    pairs.setdefault((fmt, name), []).append((result, reference))
                rows.append((fmt, nginx_name, reference))
                for name, url, p in anchors[fmt][1:]:
                    rows.append((fmt, name, measure(url, args, p)))
    load = os.getloadavg()
    print(f"\n{args.connections} connections, {args.seconds} s each after a {args.warmup} s warm-up, wrk -t2, "
          f"{args.rounds} round(s), {os.cpu_count()} cores; load average at the end "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")  # fmt: skip
    print("| server | req/s | p50 | p99 | non-2xx | socket errors | server CPU per 1000 req | wrk CPU |")
    print("|---|---|---|---|---|---|---|---|")
    for fmt, size in sizes.items():
        print(f"| **{fmt}, {size // 1024} KiB** | | | | | | | |")
        for f, name, result in rows:
            if f == fmt:
                print(result.line(name, size))
    print()
    for (fmt, name), against in pairs.items():
        for line in verdicts(name, fmt, args.workers, against):
            print(line)
    if args.rounds > 1:  # the steadiest figure on a shared machine: CPU per request, round by round
        for fmt in sizes:
            names = dict.fromkeys(name for f, name, _ in rows if f == fmt)
            for name in names:
                per_k = [1000 * r.server_cpu_s / r.requests for f, n, r in rows
                         if f == fmt and n == name and r.server_cpu_s and r.requests]  # fmt: skip
                if per_k:
                    print(f"{name} ({fmt}): server CPU per 1000 req, median of {len(per_k)} rounds "
                          f"{statistics.median(per_k):.3f} s ({', '.join(f'{x:.3f}' for x in per_k)})")  # fmt: skip


if __name__ == "__main__":
    main()
