"""MPEG audio frames found in a byte stream as it arrives; pure and incremental.

mod_shout streams carry no Xing/Info header (LAME's ``bWriteVbrTag`` is off), so a recording's
duration is the number of frames times the samples in each, counted here while the bytes arrive.
MPEG-1, 2 and 2.5 (8 kHz calls give MPEG-2.5 Layer III, ``ff e3``) and layers I-III are known.
Bytes that are not frames (an ID3v2 tag as ffmpeg sends first, junk, a torn frame) are skipped.
Sync is only taken when a header is followed by another consistent one, so a stray ``0xFFE``
inside a tag is not mistaken for audio; once locked, each frame is checked against the lock.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

_BITRATES = {  # kbit/s by (MPEG-1?, layer), index 1..14
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
MAX_FRAME_BYTES = 2881  # Layer II, 384 kbit/s at 8 kHz would not exist; this bounds any real frame


@dataclass(frozen=True)
class FrameHeader:
    version: int  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    layer: int
    sample_rate: int
    channels: int
    length: int
    samples: int

    stream_key: tuple[int, int, int] = field(init=False, repr=False, compare=False)
    """What stays the same from frame to frame of one stream (made once: compared for every frame)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "stream_key", (self.version, self.layer, self.sample_rate))


def parse_header(b: bytes | bytearray | memoryview) -> FrameHeader | None:
    """The frame header in the first 4 bytes, or None if they are not one (free format included)."""
    return header_at(b, 0) if len(b) >= 4 else None


def header_at(b: bytes | bytearray | memoryview, i: int) -> FrameHeader | None:
    """The frame header at ``b[i:i + 4]`` (which must exist), without copying them out."""
    if b[i] != 0xFF or b[i + 1] & 0xE0 != 0xE0:
        return None
    return _decode(b[i + 1] << 16 | b[i + 2] << 8 | b[i + 3] & 0xC0)


@functools.lru_cache(maxsize=4096)
def _decode(key: int) -> FrameHeader | None:
    """The header of bytes 1-3 (the channel mode only of the last): a stream repeats a handful,
    so each is worked out once (at 2000 sources, frames are parsed 40 000 times a second)."""
    b1, b2, b3 = key >> 16, key >> 8 & 0xFF, key & 0xFF
    version, layer_bits = (b1 >> 3) & 3, (b1 >> 1) & 3
    bitrate_index, rate_index, pad = b2 >> 4, (b2 >> 2) & 3, (b2 >> 1) & 1
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    layer = 4 - layer_bits
    mpeg1 = version == 3
    bitrate = _BITRATES[(mpeg1, layer)][bitrate_index - 1] * 1000
    rate = _RATES[version][rate_index]
    if layer == 1:
        length, samples = (12 * bitrate // rate + pad) * 4, 384
    elif layer == 2:
        length, samples = 144 * bitrate // rate + pad, 1152
    else:
        length, samples = (144 if mpeg1 else 72) * bitrate // rate + pad, 1152 if mpeg1 else 576
    channels = 1 if b3 >> 6 == 3 else 2
    return FrameHeader(version, layer, rate, channels, length, samples)


def id3v2_length(head: bytes | bytearray) -> int:
    """How many bytes an ID3v2 tag at the start of ``head`` takes (0 without one): audio follows."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
    return 10 + size + (10 if head[5] & 0x10 else 0)


@dataclass(frozen=True)
class InfoTag:
    """What a Xing/Info/VBRI frame says: the audio frames it counts (when it does), and the samples
    a gapless decoder (mpg123, mod_shout) drops: LAME's (or ffmpeg's) encoder delay plus padding."""

    frames: int | None
    trim: int


def info_tag(frame: bytes | bytearray, header: FrameHeader) -> InfoTag | None:
    """The tag in a Xing/Info/VBRI frame (a valid frame decoders skip), or None for an audio frame."""
    if header.layer != 3:
        return None
    side = (
        (17 if header.channels == 1 else 32) if header.version == 3 else (9 if header.channels == 1 else 17)
    )
    at = 4 + side
    if frame[36:40] == b"VBRI":
        return InfoTag(None, 0)
    if frame[at : at + 4] not in (b"Xing", b"Info"):
        return None
    flags = int.from_bytes(frame[at + 4 : at + 8], "big")
    frames = int.from_bytes(frame[at + 8 : at + 12], "big") if flags & 1 else None
    ext = at + 8 + (4 if flags & 1 else 0) + (4 if flags & 2 else 0) + (100 if flags & 4 else 0)
    ext += 4 if flags & 8 else 0
    if frame[ext : ext + 4] not in (b"LAME", b"Lavc", b"Lavf", b"L3.9", b"GOGO") or len(frame) < ext + 24:
        return InfoTag(frames, 0)
    packed = int.from_bytes(frame[ext + 21 : ext + 24], "big")
    return InfoTag(frames, (packed >> 12) + (packed & 0xFFF))


class MpegFramer:
    """Feed bytes as they come; get back the whole audio frames among them, and a running count.

    ``feed`` may stop early once ``max_ms`` of audio are in: it then returns how many of the bytes
    given lead up to the end of the last frame that fits, and ``full`` is set. With ``collect``
    off it only counts (a recording stores the bytes as they came; a live mount wants the frames).
    """

    def __init__(self, max_ms: int | None = None, *, collect: bool = True) -> None:
        self.max_ms = max_ms
        self.collect = collect
        self.frames = 0
        self.samples = 0
        self.sample_rate: int | None = None
        self.channels: int | None = None
        self.full = False
        self.trim = 0
        self._buf = bytearray()
        self._buf_pos = 0  # stream offset of _buf[0]
        self._seen = 0  # stream bytes fed so far
        self._skip = 0  # bytes of an ID3v2 tag still to skip
        self._lock: tuple[int, int, int] | None = None
        self._first = True

    @property
    def played_samples(self) -> int:
        """Samples a gapless decoder (mpg123, mod_shout) plays: all, less LAME's delay and padding."""
        return max(self.samples - self.trim, 0)

    @property
    def duration_ms(self) -> int:
        return round(self.played_samples * 1000 / self.sample_rate) if self.sample_rate else 0

    def feed(self, data: bytes | bytearray | memoryview) -> tuple[bytes, int]:
        """(the complete frames found, how many bytes of ``data`` were taken: all unless ``full``)."""
        if self.full:
            return b"", 0
        start = self._seen
        self._seen += len(data)
        self._buf += data
        out = bytearray()
        cut = self._scan(out, end_of_stream=False)
        if cut is None:
            return bytes(out), len(data)
        self.full = True
        self._buf.clear()
        return bytes(out), max(cut - start, 0)

    def flush(self) -> bytes:
        """At the end of the stream: the last frame, which has no successor to confirm it."""
        out = bytearray()
        if not self.full:
            self._scan(out, end_of_stream=True)
        self._buf.clear()
        return bytes(out)

    def _scan(self, out: bytearray, *, end_of_stream: bool) -> int | None:
        buf = self._buf
        i = 0
        try:
            while True:
                if self._skip:
                    step = min(self._skip, len(buf) - i)
                    i += step
                    self._skip -= step
                    if self._skip:
                        return None
                if len(buf) - i < 4:
                    return None
                if buf[i : i + 3] == b"ID3":
                    if len(buf) - i < 10:
                        return None
                    size = (buf[i + 6] << 21) | (buf[i + 7] << 14) | (buf[i + 8] << 7) | buf[i + 9]
                    self._skip = 10 + size + (10 if buf[i + 5] & 0x10 else 0)
                    continue
                at = buf.find(b"\xff", i)
                if at < 0:
                    i = len(buf)
                    return None
                i = at
                if len(buf) - i < 4:
                    return None
                header = header_at(buf, i)
                if header is None or (self._lock is not None and header.stream_key != self._lock):
                    if header is not None:
                        self._lock = None  # the stream changed or we lost sync: confirm again
                        continue
                    i += 1
                    continue
                end = i + header.length
                if self._lock is None:
                    if len(buf) < end + 4:
                        if not end_of_stream or len(buf) < end:
                            return None
                    else:
                        following = header_at(buf, end)
                        if following is None or following.stream_key != header.stream_key:
                            i += 1
                            continue
                    self._lock = header.stream_key
                elif len(buf) < end:
                    return None
                if self._first:
                    self._first = False
                    tag = info_tag(buf[i:end], header)
                    if tag is not None:
                        self.trim = tag.trim
                        if self.collect:
                            out += buf[i:end]
                        i = end
                        continue
                limit = self.max_ms
                if limit is not None and (self.samples + header.samples) * 1000 > limit * header.sample_rate:
                    return self._buf_pos + i
                self.frames += 1
                self.samples += header.samples
                self.sample_rate, self.channels = header.sample_rate, header.channels
                if self.collect:
                    out += buf[i:end]
                i = end
        finally:
            del buf[:i]
            self._buf_pos += i
