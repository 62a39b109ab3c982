"""A ``media-mgr serve --workers 2`` of a test's own, and what its log says about each worker."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
from shout_peers import start_shout_server

from servers import RunningServer


def records(srv: RunningServer) -> list[dict[str, Any]]:
    """The server's log lines (supervisor and workers), each one JSON object."""
    return [json.loads(line) for line in srv.log().splitlines() if line.startswith("{")]


def start_workers(database_url: str, data: Path, workers: int = 2, **env: str) -> tuple[RunningServer, int]:
    """Start the server and wait until every worker says it listens on the HTTP port."""
    srv, shout_port = start_shout_server(database_url, data, MEDIA_MGR_WORKERS=str(workers), **env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listening = {r.get("worker", 0) for r in records(srv) if r["msg"].startswith("listening http")}
        if listening == set(range(workers)):
            return srv, shout_port
        assert srv.proc.poll() is None, srv.log()[-4000:]
        time.sleep(0.05)
    srv.stop()
    raise AssertionError(f"not every worker listens:\n{srv.log()[-4000:]}")


def worker_pids(srv: RunningServer) -> dict[int, int]:
    """Each worker's current pid, as the supervisor logged it when it started (or restarted) it."""
    pids: dict[int, int] = {}
    for r in records(srv):
        if r["logger"] == "media_mgr.supervisor" and r["msg"] in ("worker started", "worker restarted"):
            pids[int(r["worker"])] = int(r["pid"])
    return pids


def served_by(srv: RunningServer, request_id: str, timeout: float = 10.0) -> int:
    """The worker whose access log line carries ``request_id`` (it is written once the answer went out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in records(srv):
            if r["msg"] == "request" and r.get("request_id") == request_id:
                return int(r["worker"])
        time.sleep(0.02)
    raise AssertionError(f"no access log line for {request_id}")


def request(srv: RunningServer, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, int]:
    """One request on a new connection (the kernel hands it to any worker), and which worker answered."""
    rid = secrets.token_hex(8)
    url = path if path.startswith("http") else f"{srv.url}{path}"
    r = httpx.request(method, url, headers={"x-request-id": rid}, timeout=30, **kwargs)
    return r, served_by(srv, rid)


def request_on(srv: RunningServer, worker: int, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """Repeat a (side-effect free) request on new connections until ``worker`` answers it."""
    for _ in range(200):
        r, by = request(srv, method, path, **kwargs)
        if by == worker:
            return r
    raise AssertionError(f"worker {worker} answered none of 200 requests")
