"""PCM conversions the endpoint needs: G.711 to L16, any stored WAV to 16-bit mono; pure.

``audioop`` does the sample loops in C (the ``audioop-lts`` package provides it from Python 3.13).
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterable, AsyncIterator

from media_mgr.audio.wav import IncompleteWavHeader, WavError, WavFormat, WavInfo, parse_wav_header

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

_HEADER_LIMIT = 1 << 20


def ulaw_to_l16(data: bytes) -> bytes:
    return audioop.ulaw2lin(data, 2)


def l16_to_ulaw(data: bytes) -> bytes:
    return audioop.lin2ulaw(data, 2)


def to_mono16(data: bytes, info: WavInfo) -> bytes:
    """Whole frames of ``info``'s format -> s16le mono (channels averaged)."""
    width = info.block_align // info.channels
    if info.fmt is WavFormat.MULAW:
        data, width = audioop.ulaw2lin(data, 2), 2
    elif info.fmt is WavFormat.ALAW:
        data, width = audioop.alaw2lin(data, 2), 2
    elif info.fmt is WavFormat.PCM:
        if width == 1:  # 8-bit WAV is unsigned
            data = audioop.bias(data, 1, -128)
        if width != 2:
            data, width = audioop.lin2lin(data, width, 2), 2
    else:
        raise WavError(f"{info.fmt.name} WAV cannot be played into a call")
    channels = info.channels
    while channels > 1:
        if channels == 2:
            data = audioop.tomono(data, 2, 0.5, 0.5)
            channels = 1
        else:  # keep the first channel of wider layouts
            frames = [data[i : i + 2] for i in range(0, len(data), 2 * channels)]
            data, channels = b"".join(frames), 1
    return data


async def wav_to_pcm(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """A stored WAV, as the blob store streams it -> s16le mono, whole samples, in constant memory."""
    head = b""
    info: WavInfo | None = None
    left: int | None = None  # bytes of the data chunk still to come (None: to the end)
    carry = b""
    async for chunk in chunks:
        if info is None:
            head += chunk
            try:
                info = parse_wav_header(head)
            except IncompleteWavHeader:
                if len(head) > _HEADER_LIMIT:
                    raise WavError("WAV header larger than 1 MiB") from None
                continue
            chunk, head, left = head[info.data_offset :], b"", info.data_size
        if left is not None:
            chunk = chunk[:left]
            left -= len(chunk)
        data = carry + chunk
        cut = len(data) - len(data) % info.block_align
        carry = data[cut:]
        if cut:
            yield to_mono16(data[:cut], info)
    if info is None:
        raise WavError("not a complete WAV file")
