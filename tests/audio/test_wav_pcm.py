"""Stored WAVs of every layout we accept become 16-bit mono PCM, sample for sample, whatever the
chunk sizes the store hands them over in; G.711 files decode exactly as sox decodes them."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from media_mgr.audio.wav import WavError, WavFormat, wav_header
from media_mgr.audio.wav_pcm import wav_to_pcm


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def converted(data: bytes, size: int = 7) -> np.ndarray:
    out = b"".join([pcm async for pcm in wav_to_pcm(chunks_of(data, size))])
    return np.frombuffer(out, dtype="<i2")


def samples(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(-20000, 20000, n).astype("<i2")


@pytest.mark.parametrize("size", [1, 7, 4096])
async def test_16_bit_mono_passes_through_whatever_the_chunking(size: int) -> None:
    pcm = samples(8000)
    data = wav_header(len(pcm) * 2, 8000, 1) + pcm.tobytes()
    assert np.array_equal(await converted(data, size), pcm)


async def test_stereo_is_averaged_to_mono() -> None:
    left, right = samples(800, 1), samples(800, 2)
    stereo = np.empty(1600, dtype="<i2")
    stereo[0::2], stereo[1::2] = left, right
    data = wav_header(3200, 8000, 2) + stereo.tobytes()
    expected = ((left.astype(np.int32) + right) / 2).astype(np.int32)
    assert np.abs((await converted(data)).astype(np.int32) - expected).max() <= 1


async def test_8_bit_unsigned_is_widened() -> None:
    raw = bytes(range(256))
    header = bytearray(wav_header(256, 8000, 1))
    header[32:36] = (1).to_bytes(2, "little") + (8).to_bytes(2, "little")  # block align 1, 8 bits
    header[28:32] = (8000).to_bytes(4, "little")  # byte rate
    got = await converted(bytes(header) + raw)
    assert got.tolist() == [(b - 128) << 8 for b in raw]


@pytest.mark.parametrize("encoding", ["u-law", "a-law"])
async def test_g711_wavs_decode_as_sox_decodes_them(tmp_path: Path, encoding: str) -> None:
    source = tmp_path / "s.raw"
    source.write_bytes(samples(4000, 3).tobytes())
    g711, reference = tmp_path / "g.wav", tmp_path / "ref.raw"
    raw_in = ["-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1"]
    subprocess.run(["sox", *raw_in, str(source), "-e", encoding, str(g711)], check=True)
    subprocess.run(["sox", str(g711), "-t", "raw", "-e", "signed", "-b", "16", str(reference)], check=True)
    expected = np.frombuffer(reference.read_bytes(), dtype="<i2")
    assert np.array_equal(await converted(g711.read_bytes()), expected)


async def test_a_truncated_file_is_refused() -> None:
    with pytest.raises(WavError):
        await converted(wav_header(100, 8000, 1, WavFormat.PCM)[:20])
