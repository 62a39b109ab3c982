"""Test audio made by the real tools (sox, ffmpeg, LAME), and decoded back for comparison."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np


def tone(path: Path, *, rate: int = 8000, seconds: float = 2.0, freq: int = 440, encoding: str = "signed",
         bits: int = 16, channels: int = 1) -> Path:  # fmt: skip
    """A WAV tone plus a sweep, so misplaced or resampled audio does not correlate by chance."""
    subprocess.run(
        ["sox", "-n", "-r", str(rate), "-c", str(channels), "-e", encoding, "-b", str(bits), str(path),
         "synth", str(seconds), "sine", f"{freq}", "synth", str(seconds), "sine", "amod", "3",
         "gain", "-3"],
        check=True,
    )  # fmt: skip
    return path


def mp3(path: Path, *, rate: int = 8000, seconds: float = 2.0, bitrate: str = "16k") -> Path:
    """An MP3 as mod_shout's LAME makes it (8 kHz mono is MPEG-2.5)."""
    with tempfile.TemporaryDirectory() as scratch:
        wav = tone(Path(scratch) / "src.wav", rate=rate, seconds=seconds)
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-ar", str(rate), "-ac", "1", "-c:a", "libmp3lame",
             "-b:a", bitrate, str(path)],
            check=True,
        )  # fmt: skip
    return path


def pcm(path: Path, rate: int | None = None) -> np.ndarray:
    """Decode any file to mono s16 samples with ffmpeg."""
    args = ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1"]
    if rate:
        args += ["-ar", str(rate)]
    out = subprocess.run([*args, "-"], check=True, capture_output=True).stdout
    return np.frombuffer(out, dtype="<i2")


def raw_mp3(path: Path, *, rate: int = 8000, seconds: float = 3.0, bitrate: str = "16k") -> bytes:
    """MP3 as mod_shout's LAME sends it: bare frames (8 kHz mono is MPEG-2.5), no ID3, no Xing."""
    with tempfile.TemporaryDirectory() as scratch:
        wav = tone(Path(scratch) / "src.wav", rate=rate, seconds=seconds)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "libmp3lame", "-b:a", bitrate,
                        "-ar", str(rate), "-ac", "1", "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3",
                        str(path)], check=True)  # fmt: skip
    return path.read_bytes()


def decode(data: bytes) -> np.ndarray:
    """Samples as mpg123 (the decoder mod_shout links) plays them."""
    out = subprocess.run(["mpg123", "-q", "-s", "-"], input=data, capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype="<i2")
