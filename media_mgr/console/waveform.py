"""The waveform picture of a media item: an SVG of its peaks, made once per (id, revision).

The content is streamed, never held whole: a 16-bit PCM WAV is read as stored (header skipped),
anything else (MP3, mu-law, A-law, 8/24/32-bit, float) goes through ffmpeg to raw s16le at its own
rate and channels. Pictures are kept in a small in-process LRU keyed by revision, so a replaced
item gets a new picture and an unchanged one costs nothing; concurrent first requests for one
revision wait for the one rendering, and renderings run a few at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from media_mgr.audio.transcode import transcode
from media_mgr.audio.wav import IncompleteWavHeader, WavFormat, WavInfo, parse_wav_header
from media_mgr.console.peaks import CLIP_LEVEL, FULL_SCALE, PeakMeter, Peaks
from media_mgr.media.models import MediaItem

COLUMNS = 480
HEIGHT = 64
_HEADER_LIMIT = 1 << 20


class MediaSource(Protocol):
    """What the console reads media through (``MediaLibrary`` is one)."""

    async def get(self, media_id: str) -> MediaItem: ...

    def content(self, item: MediaItem, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class Waveform:
    svg: str
    etag: str
    peaks: Peaks


class Waveforms:
    """SVG waveforms per (id, revision): an LRU of ``cache_size``, ``concurrency`` renderings at once."""

    def __init__(self, source: MediaSource, *, cache_size: int = 512, concurrency: int = 2) -> None:
        self.source = source
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, int], Waveform] = OrderedDict()
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._gate = asyncio.Semaphore(concurrency)
        self.rendered = 0  # how many this process computed (tests read it)

    async def get(self, media_id: str) -> Waveform:
        item = await self.source.get(media_id)
        key = (item.id, item.revision)
        found = self._cached(key)
        if found is not None:
            return found
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                found = self._cached(key)
                if found is None:
                    async with self._gate:
                        peaks = await measure(item, self.source.content(item))
                    self.rendered += 1
                    found = Waveform(render_svg(peaks, item), f'"wf-{item.id}-{item.revision}"', peaks)
                    self._cache[key] = found
                    while len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
        finally:
            if not lock.locked() and self._locks.get(key) is lock:
                del self._locks[key]
        return found

    def _cached(self, key: tuple[str, int]) -> Waveform | None:
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
        return found


async def measure(item: MediaItem, content: AsyncIterator[bytes], columns: int = COLUMNS) -> Peaks:
    """Peaks of one item's audio, read from ``content`` (its stored bytes) chunk by chunk."""
    expected = item.duration_ms * item.sample_rate // 1000
    try:
        head = b""
        if item.format == "wav":
            info, head = await _wav_head(content)
            if info.fmt is WavFormat.PCM and info.bits == 16:
                if info.data_size is not None:
                    expected = info.data_size // info.block_align
                return await _pcm_peaks(_prepend(head[info.data_offset :], content), columns, expected, info)
        meter = PeakMeter(columns, expected, item.channels or 1)
        async with contextlib.aclosing(
            transcode(_prepend(head, content), item.format, "s16le", None, None)
        ) as pcm:
            async for piece in pcm:
                meter.feed(piece)
        return meter.result()
    finally:
        await _close(content)


async def _close(chunks: AsyncIterator[bytes]) -> None:
    """Stop reading the store early (an async generator's ``aclose``), if the source offers it."""
    closer = getattr(chunks, "aclose", None)
    if closer is not None:
        await closer()


async def _pcm_peaks(pcm: AsyncIterator[bytes], columns: int, expected: int, info: WavInfo) -> Peaks:
    meter = PeakMeter(columns, expected, info.channels)
    left = info.data_size
    async for piece in pcm:
        if left is not None:  # a chunk after the data (LIST, id3) is not audio
            piece, left = piece[:left], left - min(left, len(piece))
        meter.feed(piece)
        if left == 0:
            break
    return meter.result()


async def _wav_head(chunks: AsyncIterator[bytes]) -> tuple[WavInfo, bytes]:
    head = b""
    async for piece in chunks:
        head += piece
        try:
            return parse_wav_header(head), head
        except IncompleteWavHeader:
            if len(head) > _HEADER_LIMIT:
                raise
    return parse_wav_header(head), head


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for piece in rest:
        yield piece


def render_svg(peaks: Peaks, item: MediaItem) -> str:
    """Bars from each column's lowest to highest sample; clipped columns in red, silence says so."""
    mid = HEIGHT / 2
    scale = mid / (FULL_SCALE + 1)
    bars: list[str] = []
    clips: list[str] = []
    for x, col in enumerate(peaks.columns):
        if col is None:
            continue
        lo, hi = col
        top, bottom = mid - hi * scale, mid - lo * scale
        if bottom - top < 0.5:  # keep silence visible as a hairline
            top, bottom = mid - 0.25, mid + 0.25
        bar = f"M{x + 0.5} {top:.2f}V{bottom:.2f}"
        (clips if hi >= CLIP_LEVEL or lo <= -CLIP_LEVEL - 1 else bars).append(bar)
    dbfs = peaks.peak_dbfs
    level = "digital silence" if dbfs is None else f"peak {dbfs} dBFS"
    if peaks.clipped:
        level += f", {peaks.clipped} clipped samples"
    title = f"{item.name}: {level}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {len(peaks.columns)} {HEIGHT}" '
        f'preserveAspectRatio="none" role="img" aria-label="{_escape(title)}" '
        f'data-peak-dbfs="{"" if dbfs is None else dbfs}" data-clipped="{peaks.clipped}" '
        f'data-revision="{item.revision}">',
        f"<title>{_escape(title)}</title>",
        f'<line x1="0" x2="{len(peaks.columns)}" y1="{mid}" y2="{mid}" stroke="#9aa7b5" stroke-width="0.5"/>',
    ]
    if bars:
        parts.append(f'<path d="{"".join(bars)}" stroke="#2f6fb0" stroke-width="1" fill="none"/>')
    if clips:
        parts.append(
            f'<path class="clipped" d="{"".join(clips)}" stroke="#d0342c" stroke-width="1" fill="none"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
