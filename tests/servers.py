"""Run the real ``media-mgr serve`` in a subprocess, on loopback and a free port."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

LISTENING = re.compile(r"listening http 127\.0\.0\.1:(\d+)")
LISTENING_WS = re.compile(r"listening audio_stream 127\.0\.0\.1:(\d+)")
# Which listener mod_audio_stream's tests use: "own" (MEDIA_MGR_AUDIO_STREAM_PORT, picows) or "http"
# (the route on the HTTP port); ``MEDIA_MGR_TEST_WS_LISTENER=http scripts/test tests/audio_stream``.
WS_LISTENER = os.environ.get("MEDIA_MGR_TEST_WS_LISTENER", "own")


@dataclass
class RunningServer:
    proc: subprocess.Popen[bytes]
    url: str
    port: int
    log_path: Path
    ws_port: int = 0  # where mod_audio_stream connects: the audio_stream listener, else the HTTP port

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end from sync code, even inside a running event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def media_mgr_command() -> list[str]:
    return [sys.executable, "-m", "media_mgr.cli"]


def start_server(
    env: dict[str, str],
    log_path: Path,
    timeout: float = 60.0,
    prefix: Sequence[str] = (),
    ws_listener: str = WS_LISTENER,
) -> RunningServer:
    """Start a server and wait for its ``listening http`` line (one per worker with
    ``MEDIA_MGR_WORKERS``); raises with its log if it dies.

    ``prefix`` runs it through another command (``setpriv`` to drop root). ``ws_listener`` "own" gives
    mod_audio_stream its own listener (``ws_port``), else it uses the HTTP port.
    """
    own = {"MEDIA_MGR_AUDIO_STREAM_PORT": "0"} if ws_listener == "own" else {}
    full_env = {**os.environ, "MEDIA_MGR_BIND": "127.0.0.1", "MEDIA_MGR_HTTP_PORT": "0",
                "MEDIA_MGR_SHOUT_PORT": "0", "MEDIA_MGR_WORKERS": "1", **own, **env}  # fmt: skip
    log = log_path.open("wb")
    proc = subprocess.Popen([*prefix, *media_mgr_command(), "serve"], env=full_env, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        found = LISTENING.findall(text)
        if len(found) >= int(full_env["MEDIA_MGR_WORKERS"]):
            port = int(found[0])
            ws = LISTENING_WS.search(text)
            return RunningServer(proc, f"http://127.0.0.1:{port}", port, log_path,
                                 int(ws.group(1)) if ws else port)  # fmt: skip
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"media-mgr serve did not start:\n{log_path.read_text(errors='replace')[-4000:]}")


def rss_kib(pid: int) -> int:
    """Resident memory of a process now, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants now (``serve --workers N``: the supervisor and its workers), from /proc."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue  # gone meanwhile
    return found


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")
