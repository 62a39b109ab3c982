"""How late a listener on another instance hears a live mount, beside the source's own instance.

Two ``media-mgr serve`` on one scratch database. One real-time source (16 kbit/s MP3 at 8 kHz, as
mod_shout sends it, paced every 100 ms) streams to A; listeners send mod_shout's GET to A (the
anchor) and to B (fed through B's mirror of A's mount). The whole stream fits the burst, so byte k
of every listener is byte k of the source: each listener's lateness at byte k is when it arrived
less when the source sent it. Printed: lateness percentiles of A's listeners and of B's, their
difference (what the fleet adds), and the source's own lateness against its schedule (the load
generator's). Run: .venv/bin/python bench/fleet_mirror_latency.py [--listeners 5] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import statistics
from dataclasses import dataclass, field

import httpx
from shout_harness import bench_audio, cleanup, media_mgr, scratch_database, workdir


@dataclass
class Timeline:
    """(cumulative bytes, loop time) as they went out or came in."""

    points: list[tuple[int, float]] = field(default_factory=list)
    error: str = ""

    def at(self, offset: int) -> float | None:
        """When byte ``offset`` had gone out (or come in)."""
        i = bisect.bisect_right([p[0] for p in self.points], offset)
        return self.points[i][1] if i < len(self.points) else None


async def source(port: int, mount: str, frames: list[bytes], frame_s: float, seconds: float,
                 out: Timeline, late: list[float]) -> None:  # fmt: skip
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = base64.b64encode(b"source:hackme").decode()
    writer.write(f"SOURCE {mount} HTTP/1.0\r\nAuthorization: Basic {auth}\r\nContent-Type: audio/mpeg\r\n\r\n"
                 .encode())  # fmt: skip
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
    start, done, sent = loop.time(), 0, 0
    while (now := loop.time() - start) < seconds:
        due = int(now / frame_s) + 1
        if due > done:
            late.append(now - done * frame_s)  # how late this batch's first frame leaves
            chunk = b"".join(frames[k % len(frames)] for k in range(done, due))
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
            out.points.append((sent, loop.time()))
            done = due
        await asyncio.sleep(0.1)
    writer.close()


async def listen(port: int, mount: str, until: float, out: Timeline) -> None:
    loop = asyncio.get_running_loop()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {mount} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: FreeSWITCH(mod_shout)/1.0\r\n"
                     "Accept: */*\r\n\r\n".encode())  # fmt: skip
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
        got = 0
        while loop.time() < until:
            piece = await asyncio.wait_for(reader.read(65536), 10)
            if not piece:
                break
            got += len(piece)
            out.points.append((got, loop.time()))
        writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        out.error = f"{type(exc).__name__}: {exc}"


def lateness(src: Timeline, heard: Timeline, after: float) -> list[float]:
    """Per byte batch heard: arrival less departure, for audio sent after ``after`` (bursts skipped)."""
    out = []
    for offset, when in heard.points:
        sent = src.at(offset - 1)
        if sent is not None and sent >= after:
            out.append(when - sent)
    return out


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"p50 {statistics.median(ordered) * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  "
            f"max {ordered[-1] * 1000:7.1f} ms  (n={len(ordered)})")  # fmt: skip


async def measure(
    a_port: int, b_port: int, n: int, seconds: float, frames: list[bytes], frame_s: float
) -> None:
    loop = asyncio.get_running_loop()
    src, src_late = Timeline(), list[float]()
    mount = "/bench-fleet.mp3"
    feeding = asyncio.create_task(source(a_port, mount, frames, frame_s, seconds + 3, src, src_late))
    await asyncio.sleep(1.0)
    until = loop.time() + seconds
    on_a, on_b = [Timeline() for _ in range(n)], [Timeline() for _ in range(n)]
    tasks = [asyncio.create_task(listen(a_port, mount, until, t)) for t in on_a]
    tasks += [asyncio.create_task(listen(b_port, mount, until, t)) for t in on_b]
    after = loop.time() + 1.0  # everyone connected and past the burst
    await asyncio.gather(*tasks)
    await feeding
    errors = [t.error for t in on_a + on_b if t.error]
    a_late = [x for t in on_a for x in lateness(src, t, after)]
    b_late = [x for t in on_b for x in lateness(src, t, after)]
    print(f"listeners on A (the source's instance, anchor): {summary(a_late)}")
    print(f"listeners on B (through B's mirror)            : {summary(b_late)}")
    if a_late and b_late:
        added = statistics.median(b_late) - statistics.median(a_late)
        print(f"added by the fleet (median B - median A)       : {added * 1000:7.1f} ms")
    print(f"load generator: source batches late vs schedule : {summary(src_late)}")
    print(f"listener errors: {errors or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listeners", type=int, default=5, help="per instance")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    tmp = workdir()
    try:
        frames, frame_s = bench_audio(tmp, 8000, "16k", seconds=args.seconds + 5)
        with scratch_database() as db:
            env = {"MEDIA_MGR_SHOUT_SOURCE_PASSWORD": "hackme"}
            a, a_port = media_mgr(db, tmp, "a", **env)
            b, b_port = media_mgr(db, tmp, "b", **env)
            try:
                assert httpx.get(f"{b.url}/v1/instances", timeout=10).status_code == 200
                asyncio.run(measure(a_port, b_port, args.listeners, args.seconds, frames, frame_s))
            finally:
                a.stop()
                b.stop()
    finally:
        cleanup(tmp)


if __name__ == "__main__":
    main()
