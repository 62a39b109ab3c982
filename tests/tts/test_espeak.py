"""The local engine for real: eSpeak NG from the wheel (and Debian's binary when installed)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import time
from pathlib import Path

import pytest
from speech_audio import assert_speech, measure, wav_samples

from media_mgr.tts.engine import UnsupportedSpeech
from media_mgr.tts.espeak import EspeakEngine, find_espeak
from media_mgr.tts.speech import Speech

BACKENDS = ["library", pytest.param("binary", marks=pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="Debian's espeak-ng is not installed"))]  # fmt: skip


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> EspeakEngine:
    return EspeakEngine(find_espeak(request.param))


def test_default_path_uses_the_wheel_with_nothing_else_installed() -> None:
    setup = find_espeak("auto")
    assert setup.backend == "library"
    assert (setup.data_dir / "phondata").is_file()


async def test_a_sentence_is_speech_at_the_engines_rate(engine: EspeakEngine) -> None:
    wav = await engine.synthesize(Speech("espeak", "male", "en-us", "Hello from media manager"))
    samples, rate = wav_samples(wav)
    assert rate == 22050
    assert_speech(measure(samples, rate), 0.9, 3.0)


async def test_female_voice_and_other_languages_differ(engine: EspeakEngine) -> None:
    male = await engine.synthesize(Speech("espeak", "male", "en-us", "Good morning"))
    female = await engine.synthesize(Speech("espeak", "female", "en-us", "Good morning"))
    french = await engine.synthesize(
        Speech("espeak", "female", "fr-fr", "Bonjour et bienvenue chez nous, merci de patienter")
    )
    assert male != female
    samples, rate = wav_samples(french)
    assert_speech(measure(samples, rate), 1.5, 6.0)


def test_language_maps_to_the_exact_voice_else_its_primary_subtag(engine: EspeakEngine) -> None:
    assert engine.voice_for(Speech("espeak", "female", "en-us", "x")) == "en-US+f3"
    assert engine.voice_for(Speech("espeak", "male", "fr-fr", "x")) == "fr+m3"
    assert engine.voice_for(Speech("espeak", "male", "pt-br", "x")) == "pt-BR+m3"
    with pytest.raises(UnsupportedSpeech, match="'xx-xx' is not spoken by engine espeak"):
        engine.check(Speech("espeak", "male", "xx-xx", "x"))


async def test_shell_and_options_in_the_text_are_only_spoken(engine: EspeakEngine, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"$(touch {marker}) `touch {marker}`; touch {marker} <speak>x</speak> -w {marker} --help"
    wav = await engine.synthesize(Speech("espeak", "male", "en-us", text))
    samples, rate = wav_samples(wav)
    assert_speech(measure(samples, rate), 3.0, 90.0)
    assert not marker.exists()


def espeak_children() -> list[int]:
    """Our child processes running eSpeak NG (the wheel's worker or Debian's binary)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and (b"espeak_worker" in cmdline or b"espeak-ng" in cmdline):
            found.append(int(stat.parent.name))
    return found


async def test_cancelling_kills_the_synthesis_process(engine: EspeakEngine) -> None:
    task = asyncio.create_task(engine.synthesize(Speech("espeak", "male", "en-us", "word " * 5000)))
    while not espeak_children():
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert espeak_children() == []


async def test_time_for_a_sentence_and_a_long_text(engine: EspeakEngine, record_property: object) -> None:
    """Measured, not asserted (timings live in reports); the audio is checked."""
    sentence = "Thank you for calling. Please hold while we connect your call."
    started = time.perf_counter()
    short = await engine.synthesize(Speech("espeak", "female", "en-us", sentence))
    short_s = time.perf_counter() - started
    long_text = ("Your call is important to us. All of our agents are busy helping other customers. " * 12)[
        :1000
    ]
    started = time.perf_counter()
    long = await engine.synthesize(Speech("espeak", "female", "en-us", long_text))
    long_s = time.perf_counter() - started
    print(
        f"\nespeak synthesis: {len(sentence)} chars {short_s * 1000:.0f} ms, {len(long_text)} chars {long_s * 1000:.0f} ms"
    )
    assert_speech(measure(*wav_samples(short)), 2.0, 8.0)
    assert_speech(measure(*wav_samples(long)), 40.0, 120.0)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="Debian's espeak-ng is not installed")
def test_without_the_wheel_the_debian_binary_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "espeakng_loader" else real(name)
    )
    setup = find_espeak("auto")
    assert setup.backend == "binary" and setup.command[0] == shutil.which("espeak-ng")
    assert setup.argv("en-US+f3")[-2:] == ("-v", "en-US+f3")


def test_neither_installed_is_reported_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="install the espeakng-loader package or Debian's espeak-ng"):
        find_espeak("auto")
