"""Adaptive playout lead against fixed leads on simulated links: underruns and barge-in latency.

The link, the module's playout and the server's pacing are simulated in virtual time (tests/
audio_stream_linksim.py: the real ``Pacer``, ``BufferPolicy`` and ``InterarrivalJitter``, delays
drawn from a fixed seed, TCP's in-order delivery), for each seed preset's base case: low latency
(8 kHz, one track), balanced (16 kHz, one track), high quality (16 kHz, both tracks). Reported per
minute of playback, summed over the seeds: underruns (ticks where playout had started, audio was owed
and no whole frame was there), barge-in latency if the server just stops sending (what is queued at
the module and in flight: mean and p95), and the lead used. With ``media.clear`` the module drops its
queue at once, so barge-in then costs one trip whatever the lead: the ``clear`` column.
"adaptive, no sync" is the adaptive lead with ``MEDIA_MGR_PLAYOUT_SYNC_MS=0``: no internal sync
checkpoints, so no ``media_play_complete`` events the application did not ask for, and no feedback
from the module's playout (underruns there are neither corrected for nor added to the lead).
Run: .venv/bin/python bench/audio_stream_buffering.py [--seconds 60] [--seeds 1 2 3] [--modes adaptive ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from audio_stream_linksim import CALM, JITTERY, Link, Result, simulate

LINKS = [CALM, Link("gamma", jitter_mean_ms=10.0), JITTERY]
PRESETS = [("low_latency", 8000, False), ("balanced", 16000, False), ("high_quality", 16000, True)]
SYNC_EVERY = 1.0  # MEDIA_MGR_PLAYOUT_SYNC_MS's default, in seconds
# name -> (fixed lead ms or None for adaptive, sync checkpoint every ... seconds or None)
MODES: dict[str, tuple[float | None, float | None]] = {
    "adaptive": (None, SYNC_EVERY),
    "adaptive, no sync": (None, None),
    "fixed 20 ms": (20.0, SYNC_EVERY),
    "fixed 160 ms": (160.0, SYNC_EVERY),
}


def describe(link: Link) -> str:
    spikes = f", {link.spike_prob:.0%} spikes to {link.spike_ms:g} ms" if link.spike_prob else ""
    return f"{link.name}: {link.base_ms:g} ms + gamma jitter of mean {link.jitter_mean_ms:g} ms{spikes}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    args = parser.parse_args()
    minutes = args.seconds / 60 * len(args.seeds)
    print("| link | preset | mode | lead ms (mean) | underruns / min | barge-in ms mean | p95 | clear ms |")
    print("|---|---|---|---|---|---|---|---|")
    for link in LINKS:
        for preset, rate, two_way in PRESETS:
            for mode in args.modes:
                fixed, sync = MODES[mode]
                runs: list[Result] = [
                    simulate(
                        link,
                        rate=rate,
                        two_way=two_way,
                        fixed_lead_ms=fixed,
                        seconds=args.seconds,
                        seed=s,
                        sync_every=sync,
                    )
                    for s in args.seeds
                ]
                under = sum(r.underruns for r in runs) / minutes
                lead = sum(r.lead_mean_ms for r in runs) / len(runs)
                mean = sum(r.barge_mean_ms for r in runs) / len(runs)
                p95 = max(r.barge_p95_ms for r in runs)
                clear = sum(r.clear_ms for r in runs) / len(runs)
                print(
                    f"| {link.name} | {preset} | {mode} | {lead:.0f} | {under:.1f} | {mean:.0f} | {p95:.0f} | {clear:.0f} |"
                )
    print()
    for link in LINKS:
        print(f"- {describe(link)}")


if __name__ == "__main__":
    main()
