"""The waveform picture: peaks of the real content, per revision, through every codec path."""

from __future__ import annotations

import re
import subprocess
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
from browser_visit import run_async

from media_mgr.audio.info import AudioFormat
from media_mgr.console.peaks import PeakMeter
from media_mgr.console.waveform import COLUMNS, measure
from media_mgr.media.models import CONTENT_TYPES, MediaItem

from servers import RunningServer
from sounds import pcm, tone


def item_for(path: Path, fmt: AudioFormat, rate: int, channels: int, duration_ms: int) -> MediaItem:
    now = datetime.now(UTC)
    return MediaItem(id="0" * 32, account_id=None, prompt_id=None, language=None, name=path.name,
                     content_type=CONTENT_TYPES[fmt], codec="", size=path.stat().st_size,
                     duration_ms=duration_ms, sample_rate=rate, channels=channels, sha256="", revision=1,
                     blob_id=0, created_at=now, updated_at=now)  # fmt: skip


async def chunks(path: Path, size: int = 4099) -> AsyncIterator[bytes]:
    """The stored bytes as the store hands them out: in pieces that cut frames and headers anywhere."""
    data = path.read_bytes()
    for i in range(0, len(data), size):
        yield data[i : i + size]


def peaks_of(
    samples: np.ndarray, expected_frames: int, channels: int = 1
) -> tuple[tuple[int, int] | None, ...]:
    meter = PeakMeter(COLUMNS, expected_frames, channels)
    meter.feed(samples.astype("<i2").tobytes())
    return meter.result().columns


def test_a_16_bit_wav_is_measured_from_its_own_samples(tmp_path: Path) -> None:
    wav = tone(tmp_path / "t.wav", seconds=2.0, channels=2)
    samples = np.frombuffer(wav.read_bytes()[44:], dtype="<i2")
    peaks = run_async(measure(item_for(wav, "wav", 8000, 2, 2000), chunks(wav)))
    assert peaks.frames == 16000
    assert peaks.columns == peaks_of(samples, 16000, 2)


@pytest.mark.parametrize("encoding", ["mu-law", "a-law"])
def test_g711_wav_is_decoded_by_ffmpeg_to_the_same_peaks(tmp_path: Path, encoding: str) -> None:
    wav = tone(tmp_path / "g711.wav", seconds=1.0, encoding=encoding, bits=8)
    peaks = run_async(measure(item_for(wav, "wav", 8000, 1, 1000), chunks(wav)))
    assert peaks.frames == 8000
    assert peaks.columns == peaks_of(pcm(wav), 8000)


@pytest.mark.slow
def test_an_mp3_is_decoded_to_the_same_peaks_as_ffmpeg_plays_it_from_a_pipe(tmp_path: Path) -> None:
    """Streamed, not seeked: the encoder delay stays in (a few ms at the start), as ffmpeg plays a pipe."""
    src = tone(tmp_path / "src.wav", seconds=2.0)
    mp3 = tmp_path / "t.mp3"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(src), "-c:a", "libmp3lame", "-b:a", "32k", str(mp3)], check=True
    )
    piped = subprocess.run(["ffmpeg", "-v", "error", "-f", "mp3", "-i", "pipe:0", "-f", "s16le", "-"],
                           input=mp3.read_bytes(), capture_output=True, check=True).stdout  # fmt: skip
    decoded = np.frombuffer(piped, dtype="<i2")
    peaks = run_async(measure(item_for(mp3, "mp3", 8000, 1, 2000), chunks(mp3)))
    assert peaks.frames == len(decoded)
    assert abs(len(decoded) - len(pcm(mp3))) < 8000 // 20  # within 50 ms of the gapless length
    assert peaks.columns == peaks_of(decoded, 16000)


def svg_of(server: RunningServer, media_id: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{server.url}/v1/media/{media_id}/waveform.svg", headers=headers)


@pytest.mark.slow
def test_the_picture_follows_the_revision_and_shows_clipping(
    console_server: RunningServer, tmp_path: Path
) -> None:
    quiet = tone(tmp_path / "quiet.wav", seconds=1.0)
    loud = tmp_path / "loud.wav"
    with wave.open(str(loud), "wb") as out:  # a full-scale square wave: clipped almost everywhere
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(np.tile(np.repeat(np.array([32767, -32768], "<i2"), 20), 200).tobytes())
    media_id = httpx.post(
        f"{console_server.url}/v1/media", files={"file": ("w.wav", quiet.read_bytes())}
    ).json()["id"]

    first = svg_of(console_server, media_id)
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/svg+xml"
    assert 'data-revision="1"' in first.text and 'data-clipped="0"' in first.text
    assert 'class="clipped"' not in first.text
    assert svg_of(console_server, media_id, **{"if-none-match": first.headers["etag"]}).status_code == 304

    replaced = httpx.put(
        f"{console_server.url}/v1/media/{media_id}/content", files={"file": ("l.wav", loud.read_bytes())}
    )
    assert replaced.json()["revision"] == 2
    second = svg_of(console_server, media_id, **{"if-none-match": first.headers["etag"]})
    assert second.status_code == 200
    assert second.headers["etag"] != first.headers["etag"]
    assert 'data-revision="2"' in second.text and 'class="clipped"' in second.text
    clipped = re.search(r'data-clipped="(\d+)"', second.text)
    assert clipped and int(clipped.group(1)) > 4000  # a full-scale square wave is clipped nearly everywhere


def test_an_unknown_item_has_no_picture(console_server: RunningServer) -> None:
    answer = svg_of(console_server, "f" * 32)
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"
