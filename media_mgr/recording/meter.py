"""How much audio a recording holds, measured while it arrives or afterwards from the stored bytes.

One interface for both formats a recording can have: MP3 as a SHOUT source sends it (frames are
counted; mod_shout's streams have no Xing header to ask) and PCM WAV as mod_audio_stream sends it
(a header we write first, then samples, so the duration is arithmetic). ``take`` says how many of
the bytes offered fit under the duration limit, so a recording stops exactly at it.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from media_mgr.audio.mpeg import MpegFramer
from media_mgr.audio.wav import WavFormat, wav_header
from media_mgr.store.recordings import RecordingRow, RecordingStore, Summary

CODECS = {WavFormat.PCM: "pcm_s16le", WavFormat.ALAW: "pcm_alaw", WavFormat.MULAW: "pcm_mulaw"}


@dataclass(frozen=True)
class PcmFormat:
    """What the PCM handed to a WAV recording is: little-endian 16-bit unless G.711 is named."""

    rate: int
    channels: int = 1
    encoding: WavFormat = WavFormat.PCM

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.channels <= 0 or self.encoding not in CODECS:
            raise ValueError(f"bad PCM format {self!r}")

    @property
    def block_align(self) -> int:
        return self.channels * (2 if self.encoding is WavFormat.PCM else 1)

    def header(self, data_bytes: int | None = None) -> bytes:
        """The WAV header; ``None`` while the size is open (0xFFFFFFFF, still playable)."""
        return wav_header(data_bytes, self.rate, self.channels, self.encoding)


class Mp3Meter:
    def __init__(self, max_ms: int | None) -> None:
        self.framer = MpegFramer(max_ms, collect=False)

    def take(self, data: bytes | memoryview) -> int:
        return self.framer.feed(data)[1]

    def end(self) -> None:
        self.framer.flush()

    @property
    def full(self) -> bool:
        return self.framer.full

    @property
    def duration_ms(self) -> int:
        return self.framer.duration_ms

    @property
    def sample_rate(self) -> int | None:
        return self.framer.sample_rate

    @property
    def channels(self) -> int | None:
        return self.framer.channels

    codec = "mp3"


class WavMeter:
    def __init__(self, pcm: PcmFormat, max_ms: int | None) -> None:
        self.pcm = pcm
        self.data_bytes = 0
        per_second = pcm.rate * pcm.block_align
        self.max_data = (
            None if max_ms is None else max_ms * per_second // 1000 // pcm.block_align * pcm.block_align
        )
        self.full = False

    def take(self, data: bytes | memoryview) -> int:
        n = len(data)
        if self.max_data is not None and self.data_bytes + n >= self.max_data:
            n = self.max_data - self.data_bytes
            self.full = True
        self.data_bytes += n
        return n

    def end(self) -> None:
        pass

    @property
    def duration_ms(self) -> int:
        return self.data_bytes // self.pcm.block_align * 1000 // self.pcm.rate

    @property
    def sample_rate(self) -> int | None:
        return self.pcm.rate

    @property
    def channels(self) -> int | None:
        return self.pcm.channels

    @property
    def codec(self) -> str:
        return CODECS[self.pcm.encoding]


Meter = Mp3Meter | WavMeter


def meter_for(recording: RecordingRow, pcm: PcmFormat | None, max_ms: int | None) -> Meter:
    if recording.format == "mp3":
        return Mp3Meter(max_ms)
    if pcm is None:
        raise ValueError("a WAV recording needs the PCM format of what will be written")
    return WavMeter(pcm, max_ms)


def pcm_of(recording: RecordingRow) -> PcmFormat:
    """The PCM format a WAV recording was started with (kept in its row)."""
    if recording.sample_rate is None or recording.channels is None:
        raise ValueError(f"recording {recording.id} has no PCM format")
    return PcmFormat(recording.sample_rate, recording.channels)


async def summarize_stored(store: RecordingStore, recording: RecordingRow) -> Summary:
    """Measure what is stored (after a crash, or a WAV whose header was just fixed): one pass."""
    assert recording.blob_id is not None
    digest = hashlib.sha256()
    size = 0
    meter: Meter
    if recording.format == "wav":
        pcm = pcm_of(recording)
        header_len = len(pcm.header())
        data = max(recording.size - header_len, 0) // pcm.block_align * pcm.block_align
        await store.rewrite_start(recording.blob_id, pcm.header(data))
        meter = WavMeter(pcm, None)
        meter.data_bytes = data
        size = await _hash(store.read(recording.blob_id), digest)
    else:
        meter = Mp3Meter(None)
        async for piece in store.read(recording.blob_id):
            digest.update(piece)
            size += len(piece)
            meter.take(piece)
        meter.end()
    return Summary(
        size, digest.hexdigest(), meter.duration_ms, meter.sample_rate, meter.channels, meter.codec
    )


async def _hash(pieces: AsyncIterator[bytes], digest: hashlib._Hash) -> int:
    size = 0
    async for piece in pieces:
        digest.update(piece)
        size += len(piece)
    return size
