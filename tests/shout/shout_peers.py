"""The real peers of the SHOUT server, driven from tests: libshout (python-shout, in a subprocess so it
can be killed), ffmpeg, ezstream, icecast2, curl and mpg123; plus MP3 made as mod_shout makes it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from servers import RunningServer, start_server

HERE = Path(__file__).resolve().parent
PUSH = HERE / "push_shout.py"
SHOUT_PORT = re.compile(r"listening shout 127\.0\.0\.1:(\d+)")


def shout_port(srv: RunningServer) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        match = SHOUT_PORT.search(srv.log())
        if match:
            return int(match.group(1))
        time.sleep(0.05)
    raise AssertionError("no 'listening shout' line in the server log")


def create_recording(srv: RunningServer, **fields: Any) -> dict[str, Any]:
    r = httpx.post(f"{srv.url}/v1/recordings", json=fields, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def recording(srv: RunningServer, recording_id: str) -> dict[str, Any]:
    r = httpx.get(f"{srv.url}/v1/recordings/{recording_id}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def wait_state(
    srv: RunningServer, recording_id: str, states: tuple[str, ...], timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = recording(srv, recording_id)
        if got["state"] in states or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def content(srv: RunningServer, recording_id: str) -> bytes:
    r = httpx.get(f"{srv.url}/v1/recordings/{recording_id}/content", timeout=30)
    assert r.status_code == 200, r.text
    return r.content


@dataclass
class ShoutUrl:
    user: str
    password: str
    host: str
    port: int
    mount: str

    @classmethod
    def parse(cls, url: str) -> ShoutUrl:
        """As mod_shout splits it: user to the first ':', password to the next '@', host[:port], mount."""
        assert url.startswith("shout://")
        rest = url[len("shout://") :]
        user, _, rest = rest.partition(":")
        password, _, rest = rest.partition("@")
        hostport, _, mount = rest.partition("/")
        host, _, port = hostport.partition(":")
        return cls(user, password, host, int(port or 8000), "/" + mount)


def push(url: ShoutUrl, path: Path, *, pace: bool = True, extra: list[str] | None = None,
         log: Path | None = None) -> subprocess.Popen[bytes]:  # fmt: skip
    """libshout 2.4.6 (python-shout) pushing ``path`` as mod_shout does: HTTP protocol, MP3, TLS auto."""
    args = [sys.executable, str(PUSH), url.host, str(url.port), url.mount, url.user, url.password, str(path),
            "--pace" if pace else "--no-pace", *(extra or [])]  # fmt: skip
    out = log.open("wb") if log else subprocess.PIPE
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def push_and_wait(url: ShoutUrl, path: Path, *, pace: bool = True, timeout: float = 60) -> str:
    proc = push(url, path, pace=pace)
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out.decode(errors="replace")
    return out.decode()


def raw_request(port: int, data: bytes, *, read_timeout: float = 10.0, shut: bool = False) -> bytes:
    """Send bytes on a fresh connection and read everything until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        if data:
            sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                piece = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not piece:
                break
            chunks.append(piece)
        return b"".join(chunks)


def status_of(reply: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", reply)
    assert match, reply[:200]
    return int(match.group(1))


def start_shout_server(database_url: str, data: Path, **env: str) -> tuple[RunningServer, int]:
    """A ``media-mgr serve`` of our own (short SHOUT deadlines unless given), and its SHOUT port."""
    full = {"MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(data),
            "MEDIA_MGR_TIMEOUT_SHOUT_HEAD": "1.5", "MEDIA_MGR_TIMEOUT_SHOUT_SOURCE": "2",
            "MEDIA_MGR_SHOUT_SOURCE_PASSWORD": "hackme", **env}  # fmt: skip
    data.mkdir(parents=True, exist_ok=True)
    srv = start_server(full, data / f"server-{time.monotonic_ns()}.log")
    return srv, shout_port(srv)


def shout_connections(srv: RunningServer) -> float:
    """The server's own count of open SHOUT connections, from /metrics."""
    for line in httpx.get(f"{srv.url}/metrics", timeout=10).text.splitlines():
        if line.startswith("media_mgr_shout_connections "):
            return float(line.split()[1])
    raise AssertionError("no media_mgr_shout_connections in /metrics")


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Icecast:
    """A real icecast2 (2.4) on 127.0.0.1, configured as the reference's section 7 does."""

    def __init__(self, port: int | None = None, source_password: str = "s3cret", *, sources: int = 64,
                 clients: int = 1100) -> None:  # fmt: skip
        self.port = port or free_port()
        self.source_password = source_password
        self.sources, self.clients = sources, clients
        self.dir = Path(tempfile.mkdtemp(prefix="icecast-"))  # under /tmp: the icecast2 user must reach it
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Icecast:
        log = self.dir / "log"
        log.mkdir(exist_ok=True)
        owner = ""
        if os.geteuid() == 0:  # icecast2 refuses to run as root; it drops to its own user
            shutil.chown(self.dir, "icecast2", "icecast")
            shutil.chown(log, "icecast2", "icecast")
            owner = "<changeowner><user>icecast2</user><group>icecast</group></changeowner>"
        (self.dir / "icecast.xml").write_text(f"""<icecast>
  <hostname>127.0.0.1</hostname><location>test</location><admin>test@localhost</admin>
  <limits><clients>{self.clients}</clients><sources>{self.sources}</sources><queue-size>524288</queue-size>
    <client-timeout>30</client-timeout><header-timeout>15</header-timeout><source-timeout>10</source-timeout>
    <burst-on-connect>1</burst-on-connect><burst-size>65535</burst-size></limits>
  <authentication><source-password>{self.source_password}</source-password>
    <admin-user>admin</admin-user><admin-password>adm1n</admin-password></authentication>
  <listen-socket><port>{self.port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>1</fileserve>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>{log}</logdir>
    <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>3</loglevel></logging>
  <security><chroot>0</chroot>{owner}</security>
</icecast>
""")
        self.proc = subprocess.Popen(["icecast2", "-c", str(self.dir / "icecast.xml")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("icecast2 did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def listen(self, mount: str, seconds: float) -> bytes:
        """What a listener (curl, mod_shout's request) hears from the Icecast mount in ``seconds``."""
        done = subprocess.run(["curl", "-sS", "-A", "FreeSWITCH(mod_shout)/1.0", "--max-time", str(seconds),
                               f"http://127.0.0.1:{self.port}{mount}"], capture_output=True)  # fmt: skip
        return done.stdout
