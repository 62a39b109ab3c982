"""Transcoding through ffmpeg: the output is the source's sound (checked sample by sample against an
analytic signal), the byte sizes are exact, failures are typed, and ffmpeg never outlives its
consumer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from media_mgr.audio.transcode import (
    TranscodeError,
    ffmpeg_args,
    ffmpeg_exe,
    mp3_bitrate,
    sniff_format,
    transcode,
    transcoded,
)
from media_mgr.audio.wav import UNKNOWN_SIZE, parse_wav_header, wav_header

SECONDS = 2.0


def signal(rate: int, seconds: float = SECONDS, channels: int = 1) -> np.ndarray:
    """A 440 Hz tone plus a 200 -> 1800 Hz sweep, as floats; computable at any rate."""
    t = np.arange(int(rate * seconds)) / rate
    sweep = np.sin(2 * np.pi * (200 * t + (1800 - 200) * t**2 / (2 * seconds)))
    mono = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.3 * sweep
    return np.repeat(mono[:, None], channels, axis=1).reshape(-1) if channels > 1 else mono


def s16(x: np.ndarray) -> bytes:
    return np.round(x * 32767).astype("<i2").tobytes()


def wav_bytes(rate: int, channels: int = 1, seconds: float = SECONDS) -> bytes:
    pcm = s16(signal(rate, seconds, channels))
    return wav_header(len(pcm), rate, channels) + pcm


async def chunked(data: bytes, size: int = 4000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32767


def aligned_correlation(reference: np.ndarray, decoded: np.ndarray, max_lag: int) -> tuple[float, int]:
    """Best correlation of ``decoded`` shifted left by 0..max_lag against ``reference``, and that lag."""
    size = len(reference) + len(decoded)
    cross = np.fft.irfft(np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(reference, size)), size)
    lag = int(np.argmax(cross[:max_lag]))
    n = min(len(reference), len(decoded) - lag)
    return float(np.corrcoef(reference[:n], decoded[lag : lag + n])[0, 1]), lag


def mpg123(mp3: bytes) -> np.ndarray:
    out = subprocess.run(["mpg123", "-q", "-s", "-"], input=mp3, check=True, capture_output=True).stdout
    return samples(out)


def ffprobe(data: bytes) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", "-"],
        input=data,
        check=True,
        capture_output=True,
    ).stdout
    stream: dict[str, Any] = json.loads(out)["streams"][0]
    return stream


def ffmpeg_children() -> list[int]:
    """Live or zombie ffmpeg processes whose parent is this test process."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if name.startswith("ffmpeg") and int(rest[1]) == os.getpid():  # the bundled one is ffmpeg-linux-...
            found.append(int(entry))
    return found


async def endless_wav() -> AsyncIterator[bytes]:
    yield wav_header(None, 16000, 1)
    block = s16(signal(16000, 0.5))
    while True:
        yield block


async def test_wav_16k_to_8k_matches_the_source_signal_at_8k(tmp_path: Path) -> None:
    async with transcoded(chunked(wav_bytes(16000)), "wav", "wav", 8000, scratch_dir=tmp_path) as out:
        data = await collect(out.chunks(1000))
        assert len(data) == out.size
        path = tmp_path / "out.wav"
        path.write_bytes(data)

    info = parse_wav_header(data)
    assert (info.rate, info.channels, info.bits, info.data_offset) == (8000, 1, 16, 44)
    assert info.data_size == len(data) - 44
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        decoded = samples(w.readframes(w.getnframes()))
    assert abs(len(decoded) - 8000 * SECONDS) <= 2
    reference = signal(8000)
    correlation, lag = aligned_correlation(reference, decoded, 200)
    assert lag == 0  # ffmpeg's resampler compensates its own delay
    assert correlation > 0.999
    assert not list(tmp_path.glob("transcode-*"))  # the scratch file went with the context


async def test_same_rate_wav_passes_through_bit_exact(tmp_path: Path) -> None:
    source = wav_bytes(16000)
    async with transcoded(chunked(source, 777), "wav", "wav", None, None, scratch_dir=tmp_path) as out:
        assert await collect(out.chunks()) == source  # rate and channels sniffed from the header


async def test_stereo_keeps_channels_when_asked(tmp_path: Path) -> None:
    source = wav_bytes(22050, channels=2)
    async with transcoded(chunked(source), "wav", "wav", None, None, scratch_dir=tmp_path) as out:
        data = await collect(out.chunks())
    assert data == source
    async with transcoded(chunked(source), "wav", "wav", 8000, 1, scratch_dir=tmp_path) as out:
        info = parse_wav_header(await collect(out.chunks()))
    assert (info.rate, info.channels) == (8000, 1)


@pytest.mark.parametrize(
    ("rate", "sync", "kbps"), [(8000, b"\xff\xe3", 16), (16000, b"\xff\xf3", 32), (22050, b"\xff\xf3", 64)]
)
async def test_wav_to_mp3_decodes_to_the_source_signal(
    tmp_path: Path, rate: int, sync: bytes, kbps: int
) -> None:
    async with transcoded(chunked(wav_bytes(44100)), "wav", "mp3", rate, scratch_dir=tmp_path) as out:
        mp3 = await collect(out.chunks())
        assert len(mp3) == out.size
    assert mp3[:2] == sync  # no ID3 tag; MPEG-2.5 at 8 kHz as mod_shout records, MPEG-2 above
    stream = ffprobe(mp3)
    assert (stream["codec_name"], int(stream["sample_rate"]), stream["channels"]) == ("mp3", rate, 1)
    assert int(stream["bit_rate"]) == kbps * 1000
    decoded = mpg123(mp3)
    assert len(decoded) == rate * SECONDS  # gapless: the Info tag's delay and padding are cut off
    correlation, lag = aligned_correlation(signal(rate), decoded, rate // 2)
    assert lag == 0  # without the tag: 1105, LAME's encoder delay (576) plus mpg123's decoder delay (529)
    assert correlation > 0.99


async def test_mp3_to_wav_matches_mpg123(tmp_path: Path) -> None:
    async with transcoded(chunked(wav_bytes(16000)), "wav", "mp3", 16000, scratch_dir=tmp_path) as out:
        mp3 = await collect(out.chunks())
    async with transcoded(chunked(mp3, 333), "mp3", "wav", None, scratch_dir=tmp_path) as out:
        data = await collect(out.chunks())
    info = parse_wav_header(data)
    assert (info.rate, info.channels) == (16000, 1)  # sniffed from the MP3 frame header
    ours, reference = samples(data[44:]), mpg123(mp3)
    n = min(len(ours), len(reference))
    assert abs(len(ours) - len(reference)) < 1200
    assert np.max(np.abs(ours[:n] - reference[:n])) * 32767 <= 2  # ffmpeg vs mpg123 differ by 1 LSB at most


async def test_streaming_wav_output_has_open_sizes_and_sox_reads_it() -> None:
    data = await collect(transcode(chunked(wav_bytes(16000)), "wav", "wav", 8000))
    info = parse_wav_header(data)
    assert info.data_size is None
    assert int.from_bytes(data[4:8], "little") == UNKNOWN_SIZE
    raw = subprocess.run(
        ["sox", "-q", "-t", "wav", "-", "-t", "raw", "-e", "signed-integer", "-b", "16", "-L", "-"],
        input=data,
        check=True,
        capture_output=True,
    ).stdout
    assert raw == data[44:]
    pcm = await collect(transcode(chunked(wav_bytes(16000)), "wav", "s16le", 8000))
    assert pcm == data[44:]


async def test_garbage_raises_transcode_error_with_ffmpeg_message() -> None:
    with pytest.raises(TranscodeError) as caught:
        await collect(transcode(chunked(b"this is not audio at all" * 100), "wav", "mp3", 8000))
    assert caught.value.stderr
    assert caught.value.status == 422
    assert "Invalid data" in caught.value.detail
    assert not ffmpeg_children()


async def test_unknown_rate_on_garbage_is_a_transcode_error() -> None:
    with pytest.raises(TranscodeError, match="cannot tell the sample rate"):
        await collect(transcode(chunked(b"\x00" * 5000), "mp3", "wav", None))


async def test_early_aclose_kills_and_reaps_ffmpeg() -> None:
    stream = transcode(endless_wav(), "wav", "s16le", 8000)
    first = await anext(stream)
    assert first
    (pid,) = ffmpeg_children()
    await stream.aclose()
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped: not even a zombie is left


async def test_cancelled_consumer_kills_ffmpeg() -> None:
    started = asyncio.Event()

    async def consume() -> None:
        async with contextlib.aclosing(transcode(endless_wav(), "wav", "mp3", 8000)) as stream:
            async for _ in stream:
                started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    (pid,) = ffmpeg_children()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not Path(f"/proc/{pid}").exists()


async def test_source_error_propagates_and_kills_ffmpeg() -> None:
    class SourceBroke(Exception):
        pass

    async def failing() -> AsyncIterator[bytes]:
        yield wav_header(None, 8000, 1)
        yield b"\x00" * 16000
        raise SourceBroke

    with pytest.raises(SourceBroke):
        await collect(transcode(failing(), "wav", "s16le", 8000))
    assert not ffmpeg_children()


async def test_slow_consumer_stalls_the_source() -> None:
    pulled = 0

    async def counted() -> AsyncIterator[bytes]:
        nonlocal pulled
        async for chunk in endless_wav():
            pulled += len(chunk)
            yield chunk

    async with contextlib.aclosing(transcode(counted(), "wav", "s16le", 16000, read_bytes=4096)) as stream:
        await anext(stream)
        for _ in range(20):  # give ffmpeg every chance to read ahead while nobody consumes
            await asyncio.sleep(0.02)
        stalled_at = pulled
        await asyncio.sleep(0.2)
        assert pulled == stalled_at  # pipes are full: the feeder waits on drain
        assert pulled < 4 * 1024 * 1024


async def test_semaphore_bounds_concurrent_ffmpeg_processes() -> None:
    limit = asyncio.Semaphore(1)
    first = transcode(endless_wav(), "wav", "s16le", 8000, limit=limit)
    await anext(first)
    second = asyncio.create_task(
        collect(transcode(chunked(wav_bytes(8000)), "wav", "s16le", None, limit=limit))
    )
    await asyncio.sleep(0.3)
    assert not second.done()
    assert len(ffmpeg_children()) == 1
    await first.aclose()
    pcm = await second
    assert pcm == s16(signal(8000))


def test_mp3_bitrates_follow_mod_shout() -> None:
    assert [mp3_bitrate(r, 1) for r in (8000, 11025, 16000, 22050, 44100, 48000)] == [16, 24, 32, 64, 64, 64]
    assert mp3_bitrate(48000, 2) == 128
    assert mp3_bitrate(8000, 6) == 32


def test_ffmpeg_args_read_stdin_and_write_stdout() -> None:
    args = ffmpeg_args("mp3", "mp3", 8000, 1)
    assert args[:2] == [ffmpeg_exe(), "-hide_banner"]
    assert "imageio_ffmpeg" in args[0]  # the bundled binary, measured faster than Debian's
    assert args[args.index("-i") + 1] == "pipe:0"
    assert args[-1] == "pipe:1"
    assert args[args.index("-b:a") + 1] == "16k"
    assert args[args.index("-f", args.index("-i")) + 1] == "mp3"
    assert ffmpeg_args("wav", "wav", 16000, 1)[-3:] == ["-f", "s16le", "pipe:1"]
    assert args[args.index("-write_xing") + 1] == "0"  # a pipe cannot be seeked back to fill the tag in
    to_file = ffmpeg_args("wav", "mp3", 8000, 1, output=Path("/tmp/x.mp3"))
    assert to_file[-2:] == ["-y", "/tmp/x.mp3"]
    assert to_file[to_file.index("-write_xing") + 1] == "1"


def test_sniff_reads_wav_and_mp3_headers_including_id3(tmp_path: Path) -> None:
    assert sniff_format(wav_bytes(11025, 2, 0.1)[:44], "wav") == (11025, 2)
    assert sniff_format(wav_bytes(11025, 2, 0.1)[:20], "wav") is None
    path = tmp_path / "tagged.mp3"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=duration=0.5:sample_rate=24000", "-ac", "2",
         "-metadata", "title=x" * 50, str(path)],
        check=True,
    )  # fmt: skip
    data = path.read_bytes()
    assert data[:3] == b"ID3"
    assert sniff_format(data, "mp3") == (24000, 2)
    assert sniff_format(b"\x00" * 100, "mp3") is None
