"""Connections that arrive together are all taken when the listening socket wakes the loop, not one
per loop iteration (uvloop's own accept), which kept the last of 200 clients waiting seconds; and
the socket object answers are written through leaves the descriptor to uvloop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import time
from collections.abc import Iterator

import uvloop
from fastapi import FastAPI

from media_mgr.http.accept import AcceptAll
from media_mgr.http.connection_limits import ConnectionLimits, _Borrowed
from media_mgr.http.server import HttpServer, HttpServerConfig

CLIENTS = 20


def queued(port: int) -> int:
    """Connections waiting in the accept queue of the socket listening on ``port`` (/proc/net/tcp)."""
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                return int(fields[4].split(":")[1], 16)
    raise LookupError(port)


@contextlib.contextmanager
def burst(port: int) -> Iterator[list[socket.socket]]:
    """CLIENTS connections, all in the accept queue before the loop runs again (it is blocked here)."""
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(CLIENTS)]
    try:
        deadline = time.monotonic() + 10
        while queued(port) < CLIENTS and time.monotonic() < deadline:
            time.sleep(0.01)
        assert queued(port) == CLIENTS
        yield clients
    finally:
        for client in clients:
            client.close()


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def test_every_waiting_connection_is_taken_in_one_wake() -> None:
    seen: list[int] = []  # the queue's length each time a connection reached its protocol
    made = 0

    async def main() -> None:
        sock = listener()
        port = sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        class Counting(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                nonlocal made
                seen.append(queued(port))
                made += 1
                if made == CLIENTS:
                    done.set_result(None)

        server = await loop.create_server(Counting, sock=sock)  # uvloop's own accept, one a wake
        accepting = AcceptAll(sock, Counting)
        with burst(port):
            await asyncio.wait_for(done, 10)
        accepting.close()
        accepting.close()  # twice is harmless
        server.close()
        await server.wait_closed()

    uvloop.run(main())
    assert made == CLIENTS
    assert seen[0] == 0, seen  # the first connection made: nothing was left waiting
    assert set(seen) == {0}


def test_the_http_server_takes_a_burst_at_once_and_stops_accepting_when_it_stops() -> None:
    seen: list[tuple[int, int]] = []  # (connections made, connections still queued)

    async def main() -> int:
        sock = listener()
        port = sock.getsockname()[1]
        async with HttpServer(HttpServerConfig(ConnectionLimits()), FastAPI(), sock) as server:
            connections = server._server.server_state.connections
            with burst(port):
                while len(connections) < CLIENTS:
                    await asyncio.sleep(0)
                    seen.append((len(connections), queued(port)))
        with contextlib.suppress(ConnectionRefusedError):  # nothing listens any more: refused
            socket.create_connection(("127.0.0.1", port)).close()
            return 1
        return 0

    assert uvloop.run(main()) == 0
    assert seen and seen[-1][0] == CLIENTS
    assert all(waiting == 0 for made, waiting in seen if made > 0), seen


def test_the_socket_object_a_connection_writes_through_never_closes_the_transport_s_descriptor() -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        borrowed = _Borrowed(fileno=ours.fileno())
        assert borrowed.send(b"head ", socket.MSG_MORE) == 5
        del borrowed
        gc.collect()
        ours.sendall(b"body")  # the descriptor is still open: uvloop closes it, not the object
        received = b""
        while len(received) < 9:
            received += peer.recv(16)
        assert received == b"head body"
