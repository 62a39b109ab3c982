"""MPEG audio frames counted as bytes arrive, in any split: what mpg123 plays, for MPEG-1, 2 and 2.5."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import numpy as np
import pytest

from media_mgr.audio.mpeg import MpegFramer, parse_header

from sounds import mp3, tone


def played(data: bytes) -> int:
    out = subprocess.run(["mpg123", "-q", "-s", "-"], input=data, capture_output=True, check=True).stdout
    return len(out) // 2


def raw(path: Path, rate: int, bitrate: str, seconds: float = 2.0) -> bytes:
    wav = tone(path.with_suffix(".wav"), rate=rate, seconds=seconds)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "libmp3lame", "-b:a", bitrate,
                    "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3", str(path)], check=True)  # fmt: skip
    return path.read_bytes()


def feed_randomly(framer: MpegFramer, data: bytes, seed: int) -> bytes:
    rng = random.Random(seed)
    out = bytearray()
    i = 0
    while i < len(data):
        piece = data[i : i + rng.randint(1, 900)]
        frames, taken = framer.feed(piece)
        assert taken == len(piece)
        out += frames
        i += len(piece)
    return bytes(out + framer.flush())


@pytest.mark.parametrize(
    ("rate", "bitrate", "version"), [(8000, "16k", 0), (16000, "32k", 2), (44100, "128k", 3)]
)
def test_frames_and_samples_match_what_mpg123_plays(
    tmp_path: Path, rate: int, bitrate: str, version: int
) -> None:
    data = raw(tmp_path / "a.mp3", rate, bitrate)
    header = parse_header(data[:4])
    assert header is not None and (header.version, header.sample_rate, header.channels) == (version, rate, 1)
    framer = MpegFramer()
    frames = feed_randomly(framer, data, seed=rate)
    assert frames == data  # bare frames in, the same frames out
    assert framer.samples == played(data) and framer.sample_rate == rate
    assert framer.duration_ms == round(played(data) * 1000 / rate)


def test_id3_tag_and_lame_info_frame_as_ffmpeg_writes_files(tmp_path: Path) -> None:
    data = mp3(tmp_path / "tagged.mp3", rate=8000, seconds=3.0).read_bytes()
    assert data[:3] == b"ID3"
    framer = MpegFramer()
    frames = feed_randomly(framer, data, seed=1)
    assert not frames.startswith(b"ID3") and data.endswith(frames)
    assert framer.played_samples == played(data) == 24000  # gapless: LAME's delay and padding removed


def test_junk_between_frames_is_skipped_and_sync_found_again(tmp_path: Path) -> None:
    data = raw(tmp_path / "j.mp3", 8000, "16k")
    cut = data.index(b"\xff\xe3", 1000)
    noisy = data[:cut] + b"\x00\xff\xe0junk" * 50 + data[cut:]
    framer = MpegFramer()
    assert feed_randomly(framer, noisy, seed=2) == data
    assert framer.samples == played(data)


def test_a_duration_limit_cuts_at_the_frame_that_would_pass_it(tmp_path: Path) -> None:
    data = raw(tmp_path / "l.mp3", 8000, "16k", seconds=3.0)
    framer = MpegFramer(max_ms=1000, collect=False)
    taken = 0
    for i in range(0, len(data), 333):
        _, n = framer.feed(data[i : i + 333])
        taken += n
        if framer.full:
            break
    assert framer.full and framer.samples == 13 * 576  # 936 ms: a 14th 72 ms frame would pass 1 s
    assert played(data[:taken]) == framer.samples


def test_noise_is_not_mistaken_for_audio() -> None:
    framer = MpegFramer()
    rng = np.random.default_rng(3)
    framer.feed(rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    framer.flush()
    assert framer.frames < 5  # a chance pair of consistent headers at most
