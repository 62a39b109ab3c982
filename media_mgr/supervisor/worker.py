"""One worker of ``serve --workers N``: a full :class:`Service` on the sockets the supervisor bound.

Started by the supervisor as ``python -m media_mgr.supervisor.worker INDEX CHANNEL HTTP SHOUT METRICS``:
three inherited file descriptors and the folder where the workers' metrics meet (metrics.py). The
channel is a socket pair with the supervisor: the worker reads its settings from it (one JSON line:
the DSN and secrets never appear in argv or the environment), writes the one-line reason there when
it cannot start or run, and stops cleanly when it reaches end of file (the supervisor is gone, even
killed: no worker outlives it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from media_mgr import logs
from media_mgr.app import Service, Sockets
from media_mgr.config import Settings
from media_mgr.store.preflight import explain
from media_mgr.supervisor.metrics import WorkerRegistry

log = logging.getLogger("media_mgr.supervisor")

EXIT_FAILED = 2  # the worker could not start or run; the channel says why
MAX_SETTINGS_BYTES = 1024 * 1024


class WorkerFields(logging.Filter):
    """Every log line of a worker names it: ``worker`` (its index) and ``pid``."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index
        self.pid = os.getpid()

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.index
        record.pid = self.pid
        return True


def read_settings(channel: socket.socket) -> Settings:
    data = b""
    while not data.endswith(b"\n"):
        chunk = channel.recv(65536)
        if not chunk or len(data) > MAX_SETTINGS_BYTES:
            raise SystemExit("worker: the supervisor sent no settings")
        data += chunk
    return Settings.model_validate_json(data)


def report(channel: socket.socket, reason: str) -> None:
    """Tell the supervisor why this worker ends (it may be gone already)."""
    with contextlib.suppress(OSError):
        channel.setblocking(True)
        channel.sendall(reason.replace("\n", " ").encode(errors="replace") + b"\n")


async def serve(service: Service, sockets: Sockets, channel: socket.socket, metrics: WorkerRegistry) -> None:
    """Serve until SIGTERM/SIGINT, or until the supervisor's end of the channel closes."""
    loop = asyncio.get_running_loop()
    channel.setblocking(False)

    def readable() -> None:
        try:
            if channel.recv(4096):
                return  # nothing is sent this way after the settings; ignore it
        except BlockingIOError:
            return
        except OSError:
            pass
        loop.remove_reader(channel.fileno())
        grace = service.settings.timeout_worker_stop
        log.warning("supervisor gone: stopping", extra={"grace": grace})
        os.kill(os.getpid(), signal.SIGTERM)  # the service's own handler: a clean stop
        # ... within the grace the supervisor would have given it: an orphan never lingers. What a
        # forced exit leaves open is closed by the fleet (recordings end ``interrupted``).
        loop.call_later(grace, _orphan_exit, grace)

    loop.add_reader(channel.fileno(), readable)
    publishing = asyncio.create_task(metrics.keep_publishing(), name="metrics.publish")
    try:
        await service.serve(sockets)
    finally:
        publishing.cancel()
        loop.remove_reader(channel.fileno())


def _orphan_exit(grace: float) -> None:
    log.error("supervisor gone, clean stop past its grace: exiting", extra={"grace": grace})
    logging.shutdown()
    os._exit(1)


def main(argv: list[str]) -> None:
    index, channel_fd, http_fd, shout_fd, ws_fd = (int(a) for a in argv[:5])
    channel = socket.socket(fileno=channel_fd)
    settings = read_settings(channel)
    logs.configure(settings.log_level)
    for handler in logging.getLogger().handlers:
        handler.addFilter(WorkerFields(index))
    ws = socket.socket(fileno=ws_fd) if ws_fd >= 0 else None  # the audio_stream listener, when set
    sockets = Sockets(socket.socket(fileno=http_fd), socket.socket(fileno=shout_fd), ws)
    service = Service(settings, worker=index)
    service.migrate = False  # the supervisor applied them before starting any worker
    metrics = WorkerRegistry(service.metrics.registry, Path(argv[5]), index)
    service.metrics.registry = metrics  # /metrics: every worker's figures (metrics.py)
    try:
        import uvloop

        uvloop.run(serve(service, sockets, channel, metrics))
    except SystemExit as exc:
        if exc.code in (None, 0):
            return
        reason = exc.code if isinstance(exc.code, str) else f"worker exited with status {exc.code}"
        if exc.code == 3:
            reason = "the HTTP server did not start (see the worker's log)"
        fail(channel, reason)
    except Exception as exc:
        fail(channel, explain(exc, settings.database_url) or f"{type(exc).__name__}: {exc}")


def fail(channel: socket.socket, reason: str) -> None:
    log.error("worker failed", extra={"error": reason})
    report(channel, reason)
    raise SystemExit(EXIT_FAILED)


if __name__ == "__main__":
    main(sys.argv[1:])
