"""WAV headers we build are read right by Python's wave, sox and ffprobe; ours parses theirs."""

from __future__ import annotations

import json
import struct
import subprocess
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from media_mgr.audio.wav import (
    UNKNOWN_SIZE,
    IncompleteWavHeader,
    WavError,
    WavFormat,
    WavInfo,
    padding,
    parse_wav_header,
    wav_header,
)


def noise(n: int, seed: int = 1) -> bytes:
    return np.random.default_rng(seed).integers(-32768, 32767, n, dtype="<i2").tobytes()


def ulaw_decode(codes: np.ndarray) -> np.ndarray:
    """ITU-T G.711 mu-law to 16-bit, the textbook way (independent of sox and ffmpeg)."""
    u = (~codes.astype(np.int32)) & 0xFF
    magnitude = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 7)
    return np.where(u & 0x80, 0x84 - magnitude, magnitude - 0x84).astype(np.int16)


def alaw_decode(codes: np.ndarray) -> np.ndarray:
    """ITU-T G.711 A-law to 16-bit."""
    a = codes.astype(np.int32) ^ 0x55
    seg = (a >> 4) & 7
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


def sox_s16(path: Path) -> np.ndarray:
    out = subprocess.run(
        ["sox", "-q", str(path), "-t", "raw", "-e", "signed-integer", "-b", "16", "-L", "-"],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(out, dtype="<i2")


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
    ).stdout
    stream: dict[str, Any] = json.loads(out)["streams"][0]
    return stream


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (16000, 1), (44100, 2), (48000, 6)])
def test_pcm_header_is_canonical_and_read_back_by_wave_sox_and_ffprobe(
    tmp_path: Path, rate: int, channels: int
) -> None:
    data = noise(rate // 10 * channels)
    header = wav_header(len(data), rate, channels)
    assert len(header) == 44
    path = tmp_path / "x.wav"
    path.write_bytes(header + data)

    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (rate, channels, 2)
        assert w.getnframes() == rate // 10
        assert w.readframes(w.getnframes()) == data

    info = subprocess.run(["sox", "--i", str(path)], check=True, capture_output=True, text=True).stdout
    assert f"Sample Rate    : {rate}" in info
    assert f"Channels       : {channels}" in info
    assert "16-bit Signed Integer PCM" in info
    assert sox_s16(path).tobytes() == data

    stream = ffprobe(path)
    assert stream["codec_name"] == "pcm_s16le"
    assert int(stream["sample_rate"]) == rate
    assert int(stream["channels"]) == channels
    assert int(stream["duration_ts"]) == rate // 10

    assert parse_wav_header(header) == WavInfo(WavFormat.PCM, rate, channels, 16, 44, len(data))


@pytest.mark.parametrize(
    ("fmt", "decode", "codec"),
    [(WavFormat.MULAW, ulaw_decode, "pcm_mulaw"), (WavFormat.ALAW, alaw_decode, "pcm_alaw")],
)
def test_g711_header_decodes_sample_by_sample_with_sox_and_ffmpeg(
    tmp_path: Path, fmt: WavFormat, decode: Callable[[np.ndarray], np.ndarray], codec: str
) -> None:
    codes = np.arange(256, dtype=np.uint8).repeat(3)[:-1]  # every code; odd length needs the pad byte
    header = wav_header(len(codes), 8000, 1, fmt)
    assert struct.unpack_from("<H", header, 36)[0] == 0  # cbSize
    assert header[38:42] == b"fact"
    assert struct.unpack_from("<I", header, 46)[0] == len(codes)  # frames in the fact chunk
    path = tmp_path / "g711.wav"
    path.write_bytes(header + codes.tobytes() + padding(len(codes)))
    assert len(padding(len(codes))) == 1
    expected = decode(codes)

    assert np.array_equal(sox_s16(path), expected)
    ffmpeg = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-"], check=True, capture_output=True
    ).stdout
    assert np.array_equal(np.frombuffer(ffmpeg, dtype="<i2"), expected)
    stream = ffprobe(path)
    assert (stream["codec_name"], stream["sample_rate"]) == (codec, "8000")
    riff_size = struct.unpack_from("<I", header, 4)[0]
    assert riff_size + 8 == path.stat().st_size

    info = parse_wav_header(header)
    assert (info.fmt, info.bits, info.data_offset, info.data_size) == (fmt, 8, len(header), len(codes))


def test_streaming_header_leaves_sizes_open_and_sox_reads_a_pipe() -> None:
    data = noise(4000)
    header = wav_header(None, 8000, 1)
    assert struct.unpack_from("<I", header, 4)[0] == UNKNOWN_SIZE
    assert struct.unpack_from("<I", header, 40)[0] == UNKNOWN_SIZE
    out = subprocess.run(
        ["sox", "-q", "-t", "wav", "-", "-t", "raw", "-e", "signed-integer", "-b", "16", "-L", "-"],
        input=header + data,
        check=True,
        capture_output=True,
    ).stdout
    assert out == data
    assert parse_wav_header(header).data_size is None


def test_non_empty_audio_never_gets_a_zero_data_size() -> None:
    for size in (1, 2, 160, 1 << 20):
        header = wav_header(size, 8000, 1, WavFormat.MULAW if size & 1 else WavFormat.PCM)
        assert struct.unpack_from("<I", header, len(header) - 4)[0] == size


def test_parses_ffmpeg_header_with_list_chunk(tmp_path: Path) -> None:
    path = tmp_path / "ff.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=0.5:sample_rate=16000",
         "-ac", "1", str(path)],
        check=True,
    )  # fmt: skip
    raw = path.read_bytes()
    assert b"LIST" in raw[:200]
    info = parse_wav_header(raw[:200])
    assert (info.fmt, info.rate, info.channels, info.bits) == (WavFormat.PCM, 16000, 1, 16)
    assert info.data_size == 8000 * 2
    assert info.data_offset + info.data_size == len(raw)
    with wave.open(str(path)) as w:
        assert raw[info.data_offset :] == w.readframes(w.getnframes())


def test_parses_sox_24_bit_extensible_header(tmp_path: Path) -> None:
    path = tmp_path / "s24.wav"
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-b", "24", str(path), "synth", "0.1", "sine", "440"], check=True
    )
    raw = path.read_bytes()
    assert struct.unpack_from("<H", raw, 20)[0] == 0xFFFE  # WAVE_FORMAT_EXTENSIBLE
    info = parse_wav_header(raw)
    assert (info.fmt, info.rate, info.channels, info.bits) == (WavFormat.PCM, 8000, 1, 24)
    assert info.block_align == 3
    assert info.data_offset + (info.data_size or 0) == len(raw)
    assert info.data_size == 800 * 3


def test_parses_8_bit_and_float(tmp_path: Path) -> None:
    for encoding, bits, fmt in (
        ("unsigned", "8", WavFormat.PCM),
        ("floating-point", "32", WavFormat.IEEE_FLOAT),
    ):
        path = tmp_path / f"{bits}.wav"
        subprocess.run(
            ["sox", "-n", "-r", "11025", "-c", "2", "-e", encoding, "-b", bits, str(path), "synth", "0.1",
             "sine", "440"],
            check=True,
        )  # fmt: skip
        info = parse_wav_header(path.read_bytes())
        assert (info.fmt, info.rate, info.channels, info.bits) == (fmt, 11025, 2, int(bits))


def test_prefix_too_short_asks_for_more_until_data_chunk() -> None:
    header = wav_header(100, 8000, 1, WavFormat.MULAW)
    for cut in range(len(header)):
        with pytest.raises(IncompleteWavHeader) as caught:
            parse_wav_header(header[:cut])
        assert cut < caught.value.needed <= len(header)
    assert parse_wav_header(header).data_offset == len(header)


@pytest.mark.parametrize(
    "data",
    [
        b"ID3\x04\x00\x00\x00\x00\x00\x00",
        b"<html><body>404</body></html>",
        b"RIFX\x00\x00\x00\x00WAVE",
        b"R0",
    ],
)
def test_non_wav_is_refused(data: bytes) -> None:
    with pytest.raises(WavError) as caught:
        parse_wav_header(data)
    assert not isinstance(caught.value, IncompleteWavHeader)
    assert caught.value.status == 415


def test_unsupported_codec_is_named(tmp_path: Path) -> None:
    path = tmp_path / "gsm.wav"
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-e", "gsm-full-rate", str(path), "synth", "0.1", "sine", "440"],
        check=True,
    )
    with pytest.raises(WavError, match="0x0031"):
        parse_wav_header(path.read_bytes())


def test_data_before_fmt_is_refused() -> None:
    bad = b"RIFF" + struct.pack("<I", 12) + b"WAVE" + b"data" + struct.pack("<I", 0)
    with pytest.raises(WavError, match="before fmt"):
        parse_wav_header(bad)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="bad WAV parameters"):
        wav_header(10, 0, 1)
    with pytest.raises(ValueError, match="bad WAV parameters"):
        wav_header(10, 8000, 0)
    with pytest.raises(ValueError, match="do not fit"):
        wav_header(UNKNOWN_SIZE, 8000, 1)
    with pytest.raises(ValueError, match="cannot write"):
        wav_header(10, 8000, 1, WavFormat.IEEE_FLOAT)
