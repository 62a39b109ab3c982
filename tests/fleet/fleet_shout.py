"""What the fleet's SHOUT tests share: two instances on one database, and mod_shout's listener."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from shout_peers import start_shout_server

from servers import RunningServer

GRACE = "1"  # MEDIA_MGR_FLEET_GRACE_SECONDS: a killed instance is declared gone quickly


@dataclass
class Instance:
    server: RunningServer
    shout_port: int
    id: str


def start_instance(database_url: str, data: Path, **env: str) -> Instance:
    srv, port = start_shout_server(database_url, data, MEDIA_MGR_FLEET_GRACE_SECONDS=GRACE, **env)
    r = httpx.get(f"{srv.url}/v1/instances", timeout=10)
    assert r.status_code == 200, r.text
    return Instance(srv, port, r.json()["self"])


def mod_shout_get(port: int, mount: str) -> bytes:
    """mod_shout's playback request, byte for byte (reference 2.2: libcurl's GET, no other header)."""
    return (f"GET {mount} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: FreeSWITCH(mod_shout)/1.0\r\n"
            "Accept: */*\r\n\r\n").encode()  # fmt: skip


@dataclass
class Listener:
    """A mod_shout listener in a thread: everything it received, and whether the server ended it."""

    port: int
    mount: str
    data: bytearray = field(default_factory=bytearray)
    closed_by_server: bool = False
    thread: threading.Thread | None = None
    timeout: float = 60.0

    def start(self) -> Listener:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout) as sock:
            sock.sendall(mod_shout_get(self.port, self.mount))
            while True:
                try:
                    piece = sock.recv(65536)
                except OSError:
                    return
                if not piece:
                    self.closed_by_server = True
                    return
                self.data += piece

    def join(self, timeout: float = 90.0) -> Listener:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the listener's stream did not end"
        return self

    @property
    def status(self) -> int:
        return int(bytes(self.data[9:12]))

    @property
    def body(self) -> bytes:
        head, sep, body = bytes(self.data).partition(b"\r\n\r\n")
        assert sep, head[:200]
        return body


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met in {timeout} s")
        time.sleep(0.1)


def live_mounts(instance: Instance) -> dict[str, int]:
    """The mounts with a source on ``instance`` and their listener counts (``GET /v1/streams``)."""
    r = httpx.get(f"{instance.server.url}/v1/streams", timeout=10)
    assert r.status_code == 200, r.text
    return {s["mount"]: s["listeners"] for s in r.json()["streams"] if s.get("mount")}
