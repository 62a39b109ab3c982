"""What is in an uploaded file: PyAV (FFmpeg's libraries, in-process) decides whether it is audio
we can serve, mutagen reads MP3.

FreeSWITCH plays WAV (PCM, mu-law, a-law) natively and MP3 through mod_shout, so those are what
we accept; anything else is refused with a message saying what was found. PyAV replaced an ffprobe
subprocess: no system ffmpeg needed, and a probe costs about 12 ms instead of about 240 ms.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from media_mgr.audio.info import AudioInfo
from media_mgr.audio.mpeg import MAX_FRAME_BYTES, id3v2_length, info_tag, parse_header
from media_mgr.errors import UnsupportedMedia

WAV_CODECS = frozenset(
    {"pcm_s16le", "pcm_u8", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_mulaw", "pcm_alaw"}
)
_DECODER_CODECS = {"mp3float": "mp3"}  # FFmpeg names the decoder; we want the format's codec


@dataclass(frozen=True)
class _Report:
    """What FFmpeg's demuxer says about a file: container, first audio stream, duration in seconds."""

    container: str
    codec: str | None
    sample_rate: int
    channels: int
    duration: float | None


async def probe(path: Path, timeout: float) -> AudioInfo:
    """Describe ``path`` or raise ``UnsupportedMedia`` (415) with the reason."""
    try:
        report = await asyncio.wait_for(asyncio.to_thread(_demux, path), timeout)
    except TimeoutError:
        raise UnsupportedMedia(f"could not identify the file within {timeout:g} s") from None
    if report.codec is None:
        raise UnsupportedMedia("not an audio file: no audio stream found (upload WAV or MP3)")
    container, codec = report.container, report.codec
    if container == "wav":
        if codec not in WAV_CODECS:
            raise UnsupportedMedia(f"WAV with codec {codec} is not supported: use PCM, mu-law or a-law")
        return _playable(
            AudioInfo(
                format="wav",
                codec=codec,
                sample_rate=report.sample_rate,
                channels=report.channels,
                duration_ms=_duration_ms(report),
            )
        )
    if container == "mp3" and codec == "mp3":
        return await asyncio.to_thread(_mp3_info, path, report)
    kind = f"{container}/{codec}" if container else codec
    raise UnsupportedMedia(f"unsupported audio format {kind}: upload WAV or MP3")


def _demux(path: Path) -> _Report:
    """Open ``path`` with FFmpeg's demuxers (headers only, no decoding)."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            name = str(container.format.name)
            audio = container.streams.audio
            if not audio:
                return _Report(name, None, 0, 0, None)
            stream = audio[0]
            ctx: Any = stream.codec_context
            codec = str(ctx.name)
            seconds: float | None = None
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * Fraction(stream.time_base))
            elif container.duration is not None:
                seconds = container.duration / 1_000_000  # AV_TIME_BASE
            return _Report(name, _DECODER_CODECS.get(codec, codec), int(ctx.sample_rate or 0),
                           int(ctx.channels or 0), seconds)  # fmt: skip
    except av.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UnsupportedMedia(f"not an audio file ({reason})") from None


def _duration_ms(report: _Report) -> int:
    return round(report.duration * 1000) if report.duration else 0


def _mp3_info(path: Path, report: _Report) -> AudioInfo:
    from mutagen.mp3 import MP3, HeaderNotFoundError

    try:
        mp3: Any = MP3(path)  # type: ignore[no-untyped-call]
    except HeaderNotFoundError:
        raise UnsupportedMedia("not an MP3 file: no MPEG audio frames found") from None
    # mutagen reads the Xing/VBRI header when there is one, so VBR durations are right; it only
    # honours LAME's gapless delay/padding when the tag says "LAME", so read ffmpeg's "Lavc" too.
    samples = _gapless_samples(path)
    if samples is not None:
        duration = round(samples * 1000 / mp3.info.sample_rate)
    else:
        duration = round(mp3.info.length * 1000) or _duration_ms(report)
    return _playable(
        AudioInfo(
            format="mp3",
            codec="mp3",
            sample_rate=int(mp3.info.sample_rate),
            channels=int(mp3.info.channels),
            duration_ms=duration,
        )
    )


def _playable(info: AudioInfo) -> AudioInfo:
    if info.sample_rate <= 0 or info.channels <= 0 or info.duration_ms <= 0:
        raise UnsupportedMedia("the file holds no playable audio (no samples, rate or channels)")
    return info


def _gapless_samples(path: Path) -> int | None:
    """Samples a gapless decoder (mpg123, mod_shout) plays, from the first frame's Xing/Info tag."""
    with path.open("rb") as f:
        skip = id3v2_length(f.read(10))  # the tag sits in the first frame, right after any ID3v2
        f.seek(skip)
        head = f.read(MAX_FRAME_BYTES)
    header = parse_header(head)
    tag = info_tag(head[: header.length], header) if header is not None else None
    if header is None or tag is None or tag.frames is None:
        return None
    return max(tag.frames * header.samples - tag.trim, 0)
