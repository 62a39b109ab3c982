"""MP3 made from a WAV plays exactly the WAV's samples: its Info tag carries LAME's encoder delay and
padding, and gapless decoders (libmpg123 as mod_shout links it, ffmpeg) cut them off. Without the tag a
5.000 s 8 kHz WAV played as 5.184 s on a real mod_shout."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from media_mgr.audio.mpeg import MpegFramer
from media_mgr.audio.transcode import TranscodeError, transcoded
from media_mgr.audio.wav import parse_wav_header, wav_header


def tone_wav(rate: int, count: int) -> tuple[bytes, np.ndarray]:
    """A WAV of ``count`` samples (a tone and a sweep, so a shifted decode does not correlate) and them."""
    t = np.arange(count) / rate
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * (200 * t + 300 * t**2))
    pcm = np.round(x * 32767).astype("<i2")
    return wav_header(pcm.nbytes, rate, 1) + pcm.tobytes(), pcm


async def chunked(data: bytes, size: int = 4000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def encoded(tmp_path: Path, source: bytes, rate: int | None) -> bytes:
    async with transcoded(chunked(source), "wav", "mp3", rate, scratch_dir=tmp_path) as out:
        data = out.path.read_bytes()
        assert len(data) == out.size
    return data


def mpg123(data: bytes, path: Path) -> np.ndarray:
    """Decoded by libmpg123 (gapless by default), once from a file and once fed as a stream."""
    path.write_bytes(data)
    from_file = subprocess.run(["mpg123", "-q", "-s", str(path)], capture_output=True, check=True).stdout
    fed = subprocess.run(["mpg123", "-q", "-s", "-"], input=data, capture_output=True, check=True).stdout
    assert from_file == fed  # mod_shout feeds libmpg123 the bytes as they come
    return np.frombuffer(from_file, dtype="<i2")


def ffmpeg_decoded(path: Path) -> np.ndarray:
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-"], capture_output=True,
                         check=True).stdout  # fmt: skip
    return np.frombuffer(out, dtype="<i2")


def close_to(decoded: np.ndarray, source: np.ndarray) -> float:
    """Correlation at lag 0: a decoder that left the delay in would be 576+ samples late."""
    a, b = decoded.astype(float), source.astype(float)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
@pytest.mark.parametrize("seconds", [0.05, 1.2345, 5.0])
async def test_mp3_from_wav_decodes_to_the_exact_sample_count(
    tmp_path: Path, rate: int, seconds: float
) -> None:
    count = round(rate * seconds)
    source, pcm = tone_wav(rate, count)
    data = await encoded(tmp_path, source, None)
    decoded = mpg123(data, tmp_path / "out.mp3")
    assert len(decoded) == count
    assert len(ffmpeg_decoded(tmp_path / "out.mp3")) == count
    framer = MpegFramer()  # what a recording's or probe's duration counts from the tag
    framer.feed(data)
    framer.flush()
    assert framer.played_samples == count
    if seconds >= 1:  # lossy: the same sound, in place (a very short one is mostly LAME's ramp)
        assert close_to(decoded, pcm) > 0.98


async def test_resampled_mp3_plays_as_long_as_the_resampled_wav(tmp_path: Path) -> None:
    source, _ = tone_wav(44100, 54443)
    async with transcoded(chunked(source), "wav", "wav", 8000, scratch_dir=tmp_path) as out:
        wav = out.path.read_bytes()
    expected = (parse_wav_header(wav).data_size or 0) // 2
    assert abs(expected - 54443 * 8000 / 44100) <= 1
    data = await encoded(tmp_path, source, 8000)
    decoded = mpg123(data, tmp_path / "out.mp3")
    assert len(decoded) == expected
    assert len(ffmpeg_decoded(tmp_path / "out.mp3")) == expected
    assert close_to(decoded, np.frombuffer(wav[44:], dtype="<i2")) > 0.98


async def test_a_failed_encode_raises_and_leaves_no_scratch_file(tmp_path: Path) -> None:
    with pytest.raises(TranscodeError):
        await encoded(tmp_path, wav_header(None, 8000, 1)[:20] + b"not audio at all" * 400, 8000)
    assert not list(tmp_path.iterdir())
