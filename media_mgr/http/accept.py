"""Accept every connection waiting on a listening socket as soon as it is readable.

uvloop's libuv accepts one connection per event-loop iteration. Under load an iteration lasts as
long as it takes to answer every connection that has a request ready (tens of milliseconds with
200 busy clients), so clients that connected together were let in one per iteration: measured with
wrk's 200 connections, the last ones waited 1.5 s for their first answer (the listening socket's
queue took seconds to drain), which was the stream URLs' whole p99 tail; nginx takes the queue in
one go. :class:`AcceptAll` watches a duplicate of the listening socket and takes every waiting
connection (up to ``BATCH`` a wake) into the same protocol the server uses; uvloop's own one-a-wake
accept stays in place and finds the queue empty.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

log = logging.getLogger("media_mgr.http")

BATCH = 256
"""Connections taken per wake at most: the rest wait one loop iteration (requests in flight go first)."""
RETRY_SECONDS = 0.5
"""Out of file descriptors (or memory): accept again after this pause instead of spinning."""
_SCARCE = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class AcceptAll:
    """Takes a listening socket's whole queue for ``protocol_factory`` until :meth:`close`."""

    def __init__(
        self, sock: socket.socket, protocol_factory: Callable[[], asyncio.Protocol],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:  # fmt: skip
        self.loop = loop or asyncio.get_running_loop()
        self.protocol_factory = protocol_factory
        self.sock = sock.dup()  # its own descriptor: watched beside uvloop's, closed by close() only
        self.sock.setblocking(False)
        self._pending: set[asyncio.Task[object]] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._closed = False
        self.loop.add_reader(self.sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(BATCH):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:
                    continue  # gone before it was taken
                if exc.errno in _SCARCE:
                    log.warning("http accept paused", extra={"error": exc.strerror})
                    self.loop.remove_reader(self.sock.fileno())
                    self._retry = self.loop.call_later(RETRY_SECONDS, self._resume)
                    return
                raise
            self._start(conn)

    def _start(self, conn: socket.socket) -> None:
        """The connection in the server's protocol (``connection_made`` runs in the next iteration)."""
        task = self.loop.create_task(self.loop.connect_accepted_socket(self.protocol_factory, conn))
        self._pending.add(task)
        task.add_done_callback(lambda done: self._started(done, conn))

    def _started(self, task: asyncio.Task[object], conn: socket.socket) -> None:
        self._pending.discard(task)
        if task.cancelled():
            conn.close()
        elif (exc := task.exception()) is not None:
            log.warning("http connection not started", extra={"error": str(exc)})
            conn.close()

    def _resume(self) -> None:
        self._retry = None
        if not self._closed:
            self.loop.add_reader(self.sock.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting (the connections taken stay with the server); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
        else:
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
