"""The adaptive lead on a simulated jittery link (seeded delays, tests/audio_stream_linksim.py),
against fixed leads: behaviour only; the numbers are in bench/audio_stream_buffering.py."""

from __future__ import annotations

import pytest
from audio_stream_linksim import CALM, JITTERY, Link, simulate

from media_mgr.audio_stream.playout.buffering import BufferPolicy, Lead, LeadRange, Preset
from media_mgr.config import Settings

PRESETS = [(8000, False, "low_latency"), (16000, False, "balanced"), (16000, True, "high_quality")]
SEEDS = (1, 2, 3)
GAMMA = Link("gamma", jitter_mean_ms=10.0)


def test_the_seed_rules_pick_the_base_preset() -> None:
    policy = BufferPolicy()
    assert policy.base(8000, False) is Preset.LOW_LATENCY
    assert policy.base(16000, False) is Preset.BALANCED
    assert policy.base(8000, True) is Preset.BALANCED
    assert policy.base(48000, True) is Preset.HIGH_QUALITY
    assert BufferPolicy(forced=Preset.HIGH_QUALITY).base(8000, False) is Preset.HIGH_QUALITY


def test_jitter_moves_the_lead_up_through_the_presets_and_no_further() -> None:
    policy = BufferPolicy()
    assert policy.lead(8000, False, 0.5).ms == 20  # calm: the preset's floor
    assert policy.lead(8000, False, 8.0) == Lead(37, Preset.LOW_LATENCY, Preset.LOW_LATENCY)  # 4 * 8 + 5
    assert policy.lead(8000, False, 0.5, slip_ms=20).ms == 27  # an underrun at the module adds its size
    mid = policy.lead(8000, False, 12.0)
    assert mid.preset is Preset.BALANCED and mid.ms == 58
    top = policy.lead(8000, False, 500.0)
    assert top.preset is Preset.HIGH_QUALITY and top.ms == 160
    assert BufferPolicy(adaptive=False, fixed_lead_ms=70).lead(8000, False, 50.0).ms == 70
    with pytest.raises(ValueError):
        LeadRange(40, 20, 5)


def test_presets_are_parsed_once_by_the_settings() -> None:
    settings = Settings.model_validate({"playout_balanced": "30,90,7", "playout_preset": "balanced"})
    policy = BufferPolicy.from_settings(settings)
    assert policy.presets[Preset.BALANCED] == LeadRange(30, 90, 7)
    assert policy.lead(8000, False, 0.0) == Lead(30, Preset.BALANCED, Preset.BALANCED)
    with pytest.raises(ValueError, match="min,max,headroom"):
        Settings.model_validate({"playout_low_latency": "20,40"})


@pytest.mark.parametrize(("rate", "two_way", "preset"), PRESETS)
def test_adaptive_has_fewer_underruns_than_a_too_small_fixed_lead(
    rate: int, two_way: bool, preset: str
) -> None:
    for link in (GAMMA, JITTERY):
        adaptive = [simulate(link, rate=rate, two_way=two_way, seconds=40, seed=s) for s in SEEDS]
        small = [
            simulate(link, rate=rate, two_way=two_way, fixed_lead_ms=20, seconds=40, seed=s) for s in SEEDS
        ]
        assert adaptive[0].preset == preset
        assert sum(r.underruns for r in adaptive) < sum(r.underruns for r in small), link.name
        assert all(20 <= r.lead_mean_ms <= 160 for r in adaptive)


@pytest.mark.parametrize(("rate", "two_way", "preset"), PRESETS)
def test_adaptive_barge_in_is_quicker_than_a_large_fixed_lead(rate: int, two_way: bool, preset: str) -> None:
    for link in (CALM, GAMMA):
        for seed in SEEDS:
            adaptive = simulate(link, rate=rate, two_way=two_way, seconds=20, seed=seed)
            large = simulate(link, rate=rate, two_way=two_way, fixed_lead_ms=160, seconds=20, seed=seed)
            assert adaptive.barge_mean_ms < large.barge_mean_ms


def test_on_a_calm_link_each_preset_keeps_its_floor_and_barge_in_follows_it() -> None:
    results = [simulate(CALM, rate=rate, two_way=two_way, seconds=20) for rate, two_way, _ in PRESETS]
    assert [r.presets_seen for r in results] == [("low_latency",), ("balanced",), ("high_quality",)]
    assert [r.lead_mean_ms for r in results] == [20, 40, 80]
    assert all(r.underruns == 0 for r in results)
    barge = [r.barge_mean_ms for r in results]
    assert barge == sorted(barge) and barge[0] < 60


def test_the_simulation_is_deterministic() -> None:
    assert simulate(JITTERY, seconds=10, seed=7) == simulate(JITTERY, seconds=10, seed=7)
