"""The supervisor of ``serve --workers N``: bind once, prepare the database once, keep N workers up.

A worker that dies is started again (its recordings are closed as ``interrupted`` by the crash
recovery of the survivors or of its successor: each worker holds its own owner lock). One that dies
within ``QUICK_SECONDS`` of starting is started again after a growing pause; ``MAX_QUICK_DEATHS`` such
deaths in a row end the supervisor with one line naming the worker's last reason. SIGTERM or SIGINT
is passed on to every worker as SIGTERM (workers run in their own process group, so a terminal's
Ctrl-C reaches them only this way, once); workers still running after ``timeout_worker_stop`` are
killed.

Each worker listens on the HTTP port, and on the audio_stream port when there is one, through a
socket of its own (``SO_REUSEPORT``), handed over at start and closed here at once, so that it dies
with the worker: the kernel spreads new connections over the live workers' queues. One shared
listening socket woke every worker for each connection, and the first awake took the most: under
wrk's 200 connections one worker got 199 of them (``http.accept`` takes the whole queue at once),
and of 200 mod_audio_stream sessions opened together one worker got 140 to 143. The SHOUT port stays
shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from media_mgr.app import Sockets, bind_socket
from media_mgr.builders import open_store, shared_secret
from media_mgr.config import Settings
from media_mgr.store.embedded import EmbeddedPostgres
from media_mgr.supervisor.metrics import remove_snapshot

log = logging.getLogger("media_mgr.supervisor")

QUICK_SECONDS = 10.0  # a worker dying sooner than this after it started may be failing to start
MAX_QUICK_DEATHS = 3  # in a row, for one worker: the supervisor gives up
FIRST_BACKOFF_SECONDS = 0.5  # then doubled per quick death in a row


class SupervisorFailed(RuntimeError):
    """A worker cannot be kept running; the message is the one line the operator sees."""


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    channel: socket.socket | None = None
    pidfd: int = -1
    started: float = 0.0
    starts: int = 0
    quick_deaths: int = 0
    reason: str = field(default="")


class Supervisor:
    """Runs ``settings.workers`` workers on one pair of sockets until told to stop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.on_bound: Callable[[int, int], None] | None = None  # told (http, shout) once bound
        self._workers = [_Worker(i) for i in range(settings.workers)]
        self._stopping = False
        self._metrics = Path()  # the folder where the workers' metrics snapshots meet, while serving

    async def serve(self) -> None:
        """Bind, prepare the database, run the workers until SIGTERM/SIGINT; then stop them all."""
        sockets = Sockets.bind(self.settings, reuse_port=True)  # holds the ports; workers listen on their own
        self._metrics = Path(tempfile.mkdtemp(prefix="media-mgr-metrics-"))
        try:
            if self.on_bound is not None:
                self.on_bound(sockets.http_port, sockets.shout_port)
            with _stop_signals() as stop:
                async with shared_database(self.settings) as settings:
                    if stop.is_set():
                        log.info("stop requested while starting")
                        return
                    await self._run(settings, sockets, stop)
        finally:
            sockets.close()
            shutil.rmtree(self._metrics, ignore_errors=True)

    async def _run(self, settings: Settings, sockets: Sockets, stop: asyncio.Event) -> None:
        failed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        keepers = [asyncio.create_task(self._keep(w, settings, sockets, failed)) for w in self._workers]
        stopped = asyncio.create_task(stop.wait())
        waiting: set[asyncio.Future[Any]] = {stopped, failed}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._stopping = True
            stopped.cancel()
            for keeper in keepers:
                keeper.cancel()
            await asyncio.gather(*keepers, return_exceptions=True)
            await self._stop_all(settings.timeout_worker_stop)
        if failed.done():
            raise SupervisorFailed(failed.result())
        log.info("all workers stopped")

    async def _keep(
        self, worker: _Worker, settings: Settings, sockets: Sockets, failed: asyncio.Future[str]
    ) -> None:
        """Start the worker, and again each time it dies, until it dies too quickly too often."""
        while True:
            try:
                self._start(worker, settings, sockets)
            except Exception as exc:  # no process to watch: say why instead of waiting forever
                if not failed.done():
                    failed.set_result(f"cannot start worker {worker.index}: {exc}")
                return
            status = await _exited(worker)
            lived = time.monotonic() - worker.started
            worker.reason = _reason(worker, status)
            self._close(worker)
            remove_snapshot(self._metrics, worker.index)
            quick = lived < QUICK_SECONDS
            worker.quick_deaths = worker.quick_deaths + 1 if quick else 0
            log.warning(
                "worker died",
                extra={"worker": worker.index, "pid": worker.proc.pid if worker.proc else None,
                       "reason": worker.reason, "lived_seconds": round(lived, 1)},
            )  # fmt: skip
            if worker.quick_deaths >= MAX_QUICK_DEATHS:
                if not failed.done():
                    failed.set_result(
                        f"worker {worker.index} died {worker.quick_deaths} times within {QUICK_SECONDS:g} s "
                        f"of starting; last: {worker.reason}"
                    )
                return
            if quick:
                await asyncio.sleep(FIRST_BACKOFF_SECONDS * 2 ** (worker.quick_deaths - 1))

    def _start(self, worker: _Worker, settings: Settings, sockets: Sockets) -> None:
        http = _own(sockets.http)
        try:
            ws = _own(sockets.audio_stream) if sockets.audio_stream is not None else None
        except BaseException:
            http.close()
            raise
        ours, theirs = socket.socketpair()
        fds = (theirs.fileno(), http.fileno(), sockets.shout.fileno())
        ws_fd = ws.fileno() if ws is not None else -1
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "media_mgr.supervisor.worker", str(worker.index), *map(str, fds),
                 str(ws_fd), str(self._metrics)],
                pass_fds=fds if ws_fd < 0 else (*fds, ws_fd), stdin=subprocess.DEVNULL, process_group=0,
            )  # fmt: skip
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
            http.close()  # the worker's alone: its queue goes when it dies, not kept here unserved
            if ws is not None:
                ws.close()
        worker.proc, worker.channel, worker.pidfd = proc, ours, os.pidfd_open(proc.pid)
        worker.started = time.monotonic()
        worker.starts += 1
        with contextlib.suppress(OSError):  # a worker that died at once: its exit says why
            ours.sendall(settings.model_dump_json().encode() + b"\n")
        log.info(
            "worker started" if worker.starts == 1 else "worker restarted",
            extra={"worker": worker.index, "pid": proc.pid, "restarts": worker.starts - 1},
        )

    @staticmethod
    def _close(worker: _Worker) -> None:
        if worker.channel is not None:
            worker.channel.close()
            worker.channel = None
        if worker.pidfd >= 0:
            os.close(worker.pidfd)
            worker.pidfd = -1

    async def _stop_all(self, grace: float) -> None:
        """SIGTERM every running worker, wait up to ``grace``, SIGKILL the rest."""
        running = [w for w in self._workers if w.proc is not None and w.pidfd >= 0]
        for worker in running:
            assert worker.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.proc.pid, signal.SIGTERM)
        waits = {asyncio.create_task(_exited(w)): w for w in running}
        if not waits:
            return
        _, late = await asyncio.wait(waits, timeout=grace)
        for task in late:
            worker = waits[task]
            assert worker.proc is not None
            log.warning("worker did not stop in time: killed", extra={"worker": worker.index,
                                                                      "pid": worker.proc.pid})  # fmt: skip
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.proc.pid, signal.SIGKILL)
        if late:
            await asyncio.wait(late)
        for worker in running:
            self._close(worker)


def _own(held: socket.socket) -> socket.socket:
    """A worker's own listening socket on the port ``held`` holds (``SO_REUSEPORT``, as ``held``)."""
    host, port = held.getsockname()[:2]
    return bind_socket(host, port, reuse_port=True)


async def _exited(worker: _Worker) -> int:
    """Wait for the worker's process to end (its pidfd turns readable) and reap it."""
    assert worker.proc is not None
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(worker.pidfd, ready)
    try:
        await done
    finally:
        loop.remove_reader(worker.pidfd)
    return worker.proc.wait()


def _reason(worker: _Worker, status: int) -> str:
    """What the worker said before it ended, else how it ended."""
    said = b""
    if worker.channel is not None:
        worker.channel.setblocking(False)
        with contextlib.suppress(OSError):
            while chunk := worker.channel.recv(65536):
                said += chunk
    text = said.decode(errors="replace").strip().splitlines()
    if text:
        return text[-1]
    if status < 0:
        return f"killed by {signal.Signals(-status).name}"
    return f"exit status {status}"


@contextlib.asynccontextmanager
async def shared_database(settings: Settings) -> AsyncIterator[Settings]:
    """What every worker must find ready: the database (the embedded one started here, once), its
    migrations applied, the URL secret settled. Yields the settings the workers get (with the
    embedded server's DSN)."""
    async with contextlib.AsyncExitStack() as stack:
        if settings.database_url is None:
            embedded = EmbeddedPostgres(settings.data_dir, allow_root=settings.embedded_as_root)
            dsn = await embedded.start()
            stack.push_async_callback(embedded.stop)
            settings = settings.model_copy(update={"database_url": dsn})
        async with open_store(settings) as store:
            await shared_secret(settings, store)
        yield settings


@contextlib.contextmanager
def _stop_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGTERM or SIGINT (no KeyboardInterrupt: Ctrl-C is a clean stop)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
