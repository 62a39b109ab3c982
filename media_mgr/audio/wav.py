"""RIFF/WAVE headers: build the ones we serve, parse the ones we are given.

Built headers are what mod_shell_stream's sox and Python's ``wave`` read without guessing: canonical
44 bytes for 16-bit PCM, WAVEFORMATEX with ``cbSize`` and a ``fact`` chunk for G.711. A header we build
never says "0 bytes of data" for audio that exists (sox then plays silence); a size not known yet is
written as ``0xFFFFFFFF``, the streaming convention sox and ffmpeg accept. The parser walks chunks, so
``LIST``/``fact``/``JUNK`` before ``data`` are fine. Pure: bytes in, bytes or a ``WavInfo`` out.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from pathlib import Path

from media_mgr.errors import UnsupportedMedia

UNKNOWN_SIZE = 0xFFFFFFFF
"""Size field value meaning "until the end of the stream"."""

_RIFF = struct.Struct("<4sI4s")
_CHUNK = struct.Struct("<4sI")
_FMT = struct.Struct("<HHIIHH")
_EXTENSIBLE = 0xFFFE
# The KSDATAFORMAT_SUBTYPE_* GUIDs differ from the plain format tag only in their first two bytes.
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_MAX_HEADER_SCAN = 1 << 20


class WavFormat(enum.IntEnum):
    """The WAVE format tags we can read; PCM, A-law and mu-law are also written."""

    PCM = 1
    IEEE_FLOAT = 3
    ALAW = 6
    MULAW = 7


class WavError(UnsupportedMedia):
    """The bytes are not a WAV we can read (not RIFF/WAVE, or an unsupported codec)."""


class IncompleteWavHeader(WavError):
    """The prefix ends before the ``data`` chunk starts; ``needed`` bytes would get further."""

    def __init__(self, detail: str, needed: int) -> None:
        super().__init__(detail)
        self.needed = needed


@dataclass(frozen=True)
class WavInfo:
    """What a WAV header says. ``data_size`` is None when the header leaves it open (read to EOF)."""

    fmt: WavFormat
    rate: int
    channels: int
    bits: int
    data_offset: int
    data_size: int | None

    @property
    def block_align(self) -> int:
        """Bytes per frame (one sample for every channel)."""
        return self.channels * ((self.bits + 7) // 8)

    @property
    def byte_rate(self) -> int:
        return self.rate * self.block_align


def wav_header(data_bytes: int | None, rate: int, channels: int, fmt: WavFormat = WavFormat.PCM) -> bytes:
    """The header to put before ``data_bytes`` of audio (16-bit PCM, or 8-bit A-law / mu-law).

    ``None`` writes the streaming form (sizes ``0xFFFFFFFF``). When ``data_bytes`` is odd, RIFF wants
    one pad byte after the data: append ``padding(data_bytes)``.
    """
    if rate <= 0 or not 0 < channels <= 0xFFFF:
        raise ValueError(f"bad WAV parameters: rate={rate} channels={channels}")
    if fmt is WavFormat.PCM:
        bits, fmt_body = 16, b""
    elif fmt in (WavFormat.ALAW, WavFormat.MULAW):
        bits, fmt_body = 8, struct.pack("<H", 0)  # cbSize: WAVEFORMATEX for a non-PCM tag
    else:
        raise ValueError(f"cannot write {fmt.name} WAV")
    block_align = channels * bits // 8
    fmt_chunk = _FMT.pack(fmt, channels, rate, rate * block_align, block_align, bits) + fmt_body
    chunks = _CHUNK.pack(b"fmt ", len(fmt_chunk)) + fmt_chunk
    if fmt is not WavFormat.PCM:
        frames = UNKNOWN_SIZE if data_bytes is None else data_bytes // block_align
        chunks += _CHUNK.pack(b"fact", 4) + struct.pack("<I", frames)
    header_len = _RIFF.size + len(chunks) + _CHUNK.size
    if data_bytes is None:
        riff_size = data_size = UNKNOWN_SIZE
    else:
        riff_size = header_len - 8 + data_bytes + (data_bytes & 1)
        data_size = data_bytes
        if data_bytes < 0 or riff_size >= UNKNOWN_SIZE:
            raise ValueError(f"{data_bytes} bytes do not fit in a WAV file")
    return _RIFF.pack(b"RIFF", riff_size, b"WAVE") + chunks + _CHUNK.pack(b"data", data_size)


def padding(data_bytes: int) -> bytes:
    """The RIFF pad byte that must follow an odd-sized ``data`` chunk (else nothing)."""
    return b"\x00" if data_bytes & 1 else b""


def parse_wav_header(prefix: bytes) -> WavInfo:
    """Read the header at the start of ``prefix``, skipping any chunk before ``data``.

    Raises ``WavError`` for anything that is not a readable WAV and ``IncompleteWavHeader`` when
    ``prefix`` stops before the ``data`` chunk header (read more and call again).
    """
    riff, wave = prefix[:4], prefix[8:12]
    if riff != b"RIFF"[: len(riff)] or wave != b"WAVE"[: len(wave)]:
        raise WavError("not a WAV file: no RIFF/WAVE header")
    if len(prefix) < _RIFF.size:
        raise IncompleteWavHeader("WAV header truncated", _RIFF.size)
    fmt_info: tuple[WavFormat, int, int, int] | None = None
    pos = _RIFF.size
    while True:
        if pos + _CHUNK.size > len(prefix):
            if pos > _MAX_HEADER_SCAN:
                raise WavError("WAV header: no data chunk in the first MiB")
            raise IncompleteWavHeader("WAV header truncated before the data chunk", pos + _CHUNK.size)
        chunk_id, size = _CHUNK.unpack_from(prefix, pos)
        body = pos + _CHUNK.size
        if chunk_id == b"data":
            if fmt_info is None:
                raise WavError("WAV header: data chunk before fmt chunk")
            fmt, rate, channels, bits = fmt_info
            open_ended = size in (0, UNKNOWN_SIZE)
            return WavInfo(fmt, rate, channels, bits, body, None if open_ended else size)
        if chunk_id == b"fmt ":
            if body + size > len(prefix):
                raise IncompleteWavHeader("WAV header truncated in the fmt chunk", body + size)
            fmt_info = _parse_fmt(prefix[body : body + size])
        pos = body + size + (size & 1)


def _parse_fmt(chunk: bytes) -> tuple[WavFormat, int, int, int]:
    """(format, rate, channels, bits) from a fmt chunk body, resolving WAVE_FORMAT_EXTENSIBLE."""
    if len(chunk) < _FMT.size:
        raise WavError("WAV header: fmt chunk too short")
    tag, channels, rate, _byte_rate, _block_align, bits = _FMT.unpack_from(chunk)
    if tag == _EXTENSIBLE:
        if len(chunk) < 40 or chunk[26:40] != _GUID_TAIL:
            raise WavError("WAV header: unknown WAVE_FORMAT_EXTENSIBLE sub-format")
        tag = struct.unpack_from("<H", chunk, 24)[0]
    try:
        fmt = WavFormat(tag)
    except ValueError:
        raise WavError(f"WAV codec 0x{tag:04x} is not supported (PCM, float, A-law, mu-law)") from None
    if rate <= 0 or channels <= 0:
        raise WavError(f"WAV header: bad rate {rate} or channel count {channels}")
    allowed = {
        WavFormat.PCM: (8, 16, 24, 32),
        WavFormat.IEEE_FLOAT: (32, 64),
        WavFormat.ALAW: (8,),
        WavFormat.MULAW: (8,),
    }
    if bits not in allowed[fmt]:
        raise WavError(f"WAV header: {bits}-bit {fmt.name} is not supported")
    return fmt, rate, channels, bits


def fix_open_ended_sizes(path: Path) -> bool:
    """Write the true RIFF and data sizes into a WAV whose header left them open (0 or 0xFFFFFFFF).

    A streaming writer cannot know the sizes; sox then reads a declared 0 as "no audio", so a WAV
    stored that way would play as silence through mod_shell_stream. Returns whether it changed.
    """
    with path.open("r+b") as f:
        head = f.read(_MAX_HEADER_SCAN)
        try:
            info = parse_wav_header(head)
        except WavError:
            return False
        total = f.seek(0, 2)
        data = total - info.data_offset
        if info.data_size is not None and info.data_size <= data:
            return False
        declared = data - (data % info.block_align) if info.block_align else data
        f.seek(4)
        f.write(struct.pack("<I", min(info.data_offset - 8 + declared, UNKNOWN_SIZE - 1)))
        f.seek(info.data_offset - 4)
        f.write(struct.pack("<I", min(declared, UNKNOWN_SIZE - 1)))
    return True
