"""What is in an uploaded file: ffprobe decides whether it is audio we can serve, mutagen reads MP3.

FreeSWITCH plays WAV (PCM, mu-law, a-law) natively and MP3 through mod_shout, so those are what
we accept; anything else is refused with a message saying what was found.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from media_mgr.audio.info import AudioInfo
from media_mgr.audio.mpeg import MAX_FRAME_BYTES, id3v2_length, info_tag, parse_header
from media_mgr.errors import Unavailable, UnsupportedMedia

WAV_CODECS = frozenset(
    {"pcm_s16le", "pcm_u8", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_mulaw", "pcm_alaw"}
)


async def probe(path: Path, timeout: float) -> AudioInfo:
    """Describe ``path`` or raise ``UnsupportedMedia`` (415) with the reason."""
    report = await _ffprobe(path, timeout)
    streams = [s for s in report.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise UnsupportedMedia("not an audio file: no audio stream found (upload WAV or MP3)")
    stream = streams[0]
    container = str(report.get("format", {}).get("format_name", ""))
    codec = str(stream.get("codec_name", ""))
    if container == "wav":
        if codec not in WAV_CODECS:
            raise UnsupportedMedia(f"WAV with codec {codec} is not supported: use PCM, mu-law or a-law")
        return _playable(
            AudioInfo(
                format="wav",
                codec=codec,
                sample_rate=int(stream.get("sample_rate", 0)),
                channels=int(stream.get("channels", 0)),
                duration_ms=_duration_ms(stream, report),
            )
        )
    if container == "mp3" and codec == "mp3":
        return await asyncio.to_thread(_mp3_info, path, report, stream)
    kind = f"{container}/{codec}" if container else codec
    raise UnsupportedMedia(f"unsupported audio format {kind}: upload WAV or MP3")


async def _ffprobe(path: Path, timeout: float) -> dict[str, Any]:
    try:
        proc = await asyncio.create_subprocess_exec(
            "ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams", str(path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    except FileNotFoundError as exc:
        raise Unavailable("ffprobe is not installed (install ffmpeg)") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise UnsupportedMedia(f"could not identify the file within {timeout:g} s") from None
    if proc.returncode != 0:
        lines = err.decode("utf-8", "replace").strip().splitlines()
        reason = lines[-1].replace(f"{path}: ", "") if lines else "unreadable"
        raise UnsupportedMedia(f"not an audio file ({reason})")
    parsed: dict[str, Any] = json.loads(out or b"{}")
    return parsed


def _duration_ms(stream: dict[str, Any], report: dict[str, Any]) -> int:
    for value in (stream.get("duration"), report.get("format", {}).get("duration")):
        try:
            return round(float(str(value)) * 1000)
        except (TypeError, ValueError):
            continue
    return 0


def _mp3_info(path: Path, report: dict[str, Any], stream: dict[str, Any]) -> AudioInfo:
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
        duration = round(mp3.info.length * 1000) or _duration_ms(stream, report)
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
