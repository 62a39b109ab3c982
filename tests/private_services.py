"""PostgreSQL and RabbitMQ that a test starts, stops and restarts itself, never the machine's.

Fault tests (a database or broker going away mid-stream) used to restart the shared services, which
broke anything else running on the machine. These run on free loopback ports in temp folders:

- ``PrivatePostgres``: ``initdb`` + ``pg_ctl`` from the Debian packages (/usr/lib/postgresql/*/bin),
  trust auth, run as the ``postgres`` system user when the tests run as root (initdb refuses root);
- ``PrivateRabbit``: a ``rabbitmq-server -detached`` node with its own name, AMQP and distribution
  ports, mnesia, log and config, no plugins, stopped with ``rabbitmqctl -n``.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError(
            "no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)"
        )
    return found[-1].parent


class PrivatePostgres:
    """A throwaway cluster: ``start``/``stop``/``restart`` it at will; ``dsn`` reaches it as postgres."""

    def __init__(self, base: Path | None = None) -> None:
        self.bin = _pg_bin()
        self.top = Path(tempfile.mkdtemp(prefix="mm-private-pg-", dir=base))
        self.top.chmod(0o755)
        self.pgdata = self.top / "data"
        self.port = free_port()
        self.user: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            self.user = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
            postgres = pwd.getpwnam("postgres")
            os.chown(self.top, postgres.pw_uid, postgres.pw_gid)
        self._run("initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self.user, str(self.bin / tool), *args], capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.top} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.top / "log"), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.top, ignore_errors=True)


class PrivateRabbit:
    """A RabbitMQ node of its own (guest/guest on loopback): ``url``, ``stop_app``/``start_app``."""

    def __init__(self) -> None:
        if shutil.which("rabbitmq-server") is None:
            raise RuntimeError("rabbitmq-server is not installed")
        self.top = Path(tempfile.mkdtemp(prefix="mm-private-rabbit-"))
        self.node = f"mmtest{secrets.token_hex(4)}@localhost"
        self.port = free_port()
        (self.top / "enabled_plugins").write_text("[].\n")
        (self.top / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\n")
        if os.geteuid() == 0:  # Debian's wrappers run the node and rabbitmqctl as user rabbitmq
            self.top.chmod(0o755)
            rabbitmq = pwd.getpwnam("rabbitmq")
            for path in (self.top, *self.top.iterdir()):
                os.chown(path, rabbitmq.pw_uid, rabbitmq.pw_gid)
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.top / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.top / "log"),
            "RABBITMQ_PID_FILE": str(self.top / "rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.top / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.top / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.top / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(self.top / "rabbitmq-env.conf"),
        }

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def ctl(self, *args: str, timeout: float = 120.0) -> str:
        done = subprocess.run(["rabbitmqctl", "-n", self.node, *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def start(self) -> None:
        subprocess.run(
            ["rabbitmq-server", "-detached"], env=self.env, check=True, capture_output=True, timeout=60
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                self.ctl("await_startup", timeout=60)
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)  # the node's name is not registered with epmd yet

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.ctl("await_startup")

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.ctl("stop", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired):
            pid = (self.top / "rabbit.pid").read_text().strip() if (self.top / "rabbit.pid").exists() else ""
            if pid.isdigit():
                os.kill(int(pid), 9)
        shutil.rmtree(self.top, ignore_errors=True)
