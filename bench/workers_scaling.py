"""How media-mgr scales with ``serve --workers N``: the audio_stream load bench (audio_stream_load.py) and
the SHOUT source bench (shout_sources.py), each run against ``--workers 1`` and ``--workers 2`` in one run
and printed side by side; ``--workers 1`` is the anchor.

Both benches are imported, not copied: the same load generators, the same measures. CPU is the server's
process tree (supervisor and workers) over each steady window, in % of one core; on a machine of 2 cores,
2 workers can use up to 200 %. Server jitter comes from GET /v1/streams (any worker lists every worker's
sessions: the fleet registry); ``gen late`` is the load generator's own tick
lateness, so a client bottleneck is not read as a server one. Bounded: under 2 minutes at the defaults.
Run: .venv/bin/python bench/workers_scaling.py [--workers 1 2] [--steps 100 200] [--sources 100]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import audio_stream_load
import shout_sources
import uvloop
from shout_harness import bench_audio, cleanup, scratch_database, workdir

from memory_large_file import drop_db, scratch_db


def audio_stream_rows(args: argparse.Namespace, workers: int) -> list[dict[str, object]]:
    load = argparse.Namespace(dialect=args.dialect, window=args.window, settle=args.settle, pg=args.pg)
    rows = []
    for sessions in args.steps:
        load.sessions = sessions
        dsn = asyncio.run(scratch_db(args.pg))
        try:
            rows.append(audio_stream_load.run_media_mgr("own", load, dsn, workers))
        finally:
            asyncio.run(drop_db(args.pg, dsn))
    return rows


def shout_rows(args: argparse.Namespace, workers: int) -> list[dict[str, float]]:
    tmp = workdir()
    try:
        frames, frame_s = bench_audio(tmp, 8000, "16k", 20.0)
        with scratch_database(args.pg) as db:
            return [shout_sources.media_mgr_round(n, args.seconds, frames, frame_s, db, tmp, workers)
                    for n in args.sources]  # fmt: skip
    finally:
        cleanup(tmp)


def print_audio_stream(results: dict[int, list[dict[str, object]]], dialect: str) -> None:
    print(f"\naudio_stream: 8 kHz {dialect} sessions on the picows listener, each recorded:")
    print(f"{'workers':>7} {'sessions':>8} {'CPU %':>6} {'us/frame':>8} {'jit p95 ms':>10} {'gaps':>4} "
          f"{'KiB/sess':>8} {'gen late p95 ms':>15}")  # fmt: skip
    for workers, rows in results.items():
        for r in rows:
            print(f"{workers:>7} {r['sessions']!s:>8} {r['cpu_pct']!s:>6} {r['cpu_us_per_frame']!s:>8} "
                  f"{r.get('jitter_p95_ms')!s:>10} {r.get('false_gaps')!s:>4} {r['kib_per_session']!s:>8} "
                  f"{r['gen_late_p95_ms']!s:>15}")  # fmt: skip


def print_shout(results: dict[int, list[dict[str, float]]]) -> None:
    print("\nSHOUT sources (MP3 16 kbit/s, paced as mod_shout, every byte recorded into PostgreSQL):")
    head = f"{'sources':>7}"
    for workers in results:
        head += f" | w={workers}: {'ok':>4} {'CPU %':>6} {'ms CPU/source/s':>15} {'PG %':>5} {'lost B':>6}"
    print(head)
    for i, n in enumerate(sorted({int(r["sources"]) for rows in results.values() for r in rows})):
        line = f"{n:>7}"
        for workers, rows in results.items():
            row = rows[i]
            line += (f" | w={workers}: {int(row['connected_ok']):>4} {row['cpu_cores'] * 100:>6.1f} "
                     f"{row['cpu_ms_per_source_s']:>15.3f} {row['pg'] * 100:>5.1f} {int(row['lost']):>6}")  # fmt: skip
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dialect", choices=["voipbit", "binary"], default="voipbit")
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 200], help="audio_stream sessions")
    parser.add_argument("--window", type=float, default=4.0, help="seconds measured at each step")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds of load before measuring")
    parser.add_argument("--sources", type=int, nargs="+", default=[100], help="SHOUT sources")
    parser.add_argument("--seconds", type=float, default=10.0, help="each SHOUT round")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    started = time.monotonic()
    streams = {workers: audio_stream_rows(args, workers) for workers in args.workers}
    uvloop.install()  # as shout_sources.py runs its rounds
    sources = {workers: shout_rows(args, workers) for workers in args.workers}
    print_audio_stream(streams, args.dialect)
    print_shout(sources)
    print(f"\n# {time.monotonic() - started:.0f} s in all; figures are noisy while other work runs")


if __name__ == "__main__":
    main()
