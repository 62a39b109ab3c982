"""What the SHOUT benchmarks share: the servers (media-mgr on a scratch database, icecast2), MP3 frames,
a paced asyncio source client (SOURCE, as libshout sends to Icecast 2.4), listeners, CPU from /proc."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "shout"))
from shout_peers import Icecast, shout_port

from media_mgr.audio.mpeg import parse_header

from servers import RunningServer, process_tree, start_server
from sounds import raw_mp3

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) and of its children (``--workers N``) so far."""
    total = 0
    for each in process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def frames_of(data: bytes) -> tuple[list[bytes], float]:
    """The MP3 split into frames, and the seconds each frame lasts."""
    frames, i, seconds = [], 0, 0.0
    while i + 4 <= len(data):
        header = parse_header(data[i : i + 4])
        assert header is not None, f"no frame at {i}"
        frames.append(data[i : i + header.length])
        seconds = header.samples / header.sample_rate
        i += header.length
    return frames, seconds


def bench_audio(workdir: Path, rate: int, bitrate: str, seconds: float = 20.0) -> tuple[list[bytes], float]:
    return frames_of(
        raw_mp3(workdir / f"bench-{rate}-{bitrate}.mp3", rate=rate, seconds=seconds, bitrate=bitrate)
    )


@dataclass
class SourceResult:
    mount: str
    sent: int = 0
    ok: bool = False
    error: str = ""


async def paced_source(port: int, mount: str, user: str, password: str, frames: list[bytes], frame_s: float,
                       seconds: float, result: SourceResult) -> None:  # fmt: skip
    """A source as mod_shout's write thread paces one: every 100 ms, the frames now due, for ``seconds``."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        writer.write(f"SOURCE {mount} HTTP/1.0\r\nAuthorization: Basic {auth}\r\nContent-Type: audio/mpeg\r\n"
                     f"ice-name: bench\r\nice-audio-info: bitrate=24000\r\n\r\n".encode())  # fmt: skip
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            result.error = head.split(b"\r\n", 1)[0].decode()
            writer.close()
            return
        loop = asyncio.get_running_loop()
        start, done = loop.time(), 0
        while (now := loop.time() - start) < seconds:
            due = int(now / frame_s) + 2  # a frame ahead, as libshout's sync leaves it
            if due > done:
                chunk = b"".join(frames[k % len(frames)] for k in range(done, due))
                writer.write(chunk)
                await writer.drain()
                result.sent += len(chunk)
                done = due
            await asyncio.sleep(0.1)
        writer.close()
        await writer.wait_closed()
        result.ok = True
    except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"


@dataclass
class ListenerResult:
    got: int = 0
    window: int = 0  # bytes received inside the measuring window
    ended_early: bool = False
    error: str = ""
    marks: list[int] = field(default_factory=list)


async def listener(port: int, mount: str, until: float, result: ListenerResult) -> None:
    """mod_shout's GET; reads until ``until`` (loop time), counting bytes."""
    loop = asyncio.get_running_loop()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET {mount} HTTP/1.0\r\nUser-Agent: FreeSWITCH(mod_shout)/1.0\r\nAccept: */*\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            result.error = head.split(b"\r\n", 1)[0].decode()
            return
        while loop.time() < until:
            piece = await asyncio.wait_for(reader.read(65536), max(until - loop.time(), 0.01) + 5)
            if not piece:
                result.ended_early = True
                break
            result.got += len(piece)
        writer.close()
    except TimeoutError:
        pass
    except (OSError, asyncio.IncompleteReadError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        result.ended_early = True


def bench_icecast(sources: int, listeners: int = 0) -> Icecast:
    """icecast2 as the reference configures it, with room for the sources and listeners (Icecast counts
    sources among its clients)."""
    return Icecast(sources=sources + 10, clients=sources + listeners + 100).start()


def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="shout-bench-"))
    return path


def cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def scratch_database(admin: str = "postgresql://postgres@127.0.0.1:5432/postgres") -> Iterator[str]:
    """A database of its own on the machine's PostgreSQL, dropped afterwards."""
    name = f"mmbench_shout_{os.getpid()}"

    async def sql(statement: str) -> None:
        conn = await asyncpg.connect(admin, timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(sql(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def media_mgr(db: str, tmp: Path, tag: str, **env: str) -> tuple[RunningServer, int]:
    srv = start_server({"MEDIA_MGR_DATABASE_URL": db, "MEDIA_MGR_DATA_DIR": str(tmp / tag),
                        "MEDIA_MGR_LOG_LEVEL": "warning", **env}, tmp / f"{tag}.log")  # fmt: skip
    return srv, shout_port(srv)
