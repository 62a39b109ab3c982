"""Any stored WAV, streamed, to 16-bit mono PCM: what is played into a call; pure.

The blob store hands a WAV over in chunks of any size; ``wav_to_pcm`` parses the header once it has
all of it, then converts whole sample frames as they come (G.711 expanded, 8-bit unbiased, 24/32-bit
narrowed, channels averaged), so memory stays constant whatever the file's length.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterable, AsyncIterator

from media_mgr.audio.g711 import alaw_to_l16, ulaw_to_l16
from media_mgr.audio.wav import IncompleteWavHeader, WavError, WavFormat, WavInfo, parse_wav_header

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

_HEADER_LIMIT = 1 << 20


def to_mono16(data: bytes, info: WavInfo) -> bytes:
    """Whole frames of ``info``'s format -> s16le mono (two channels averaged, wider: the first)."""
    width = info.block_align // info.channels
    if info.fmt is WavFormat.MULAW:
        data, width = ulaw_to_l16(data), 2
    elif info.fmt is WavFormat.ALAW:
        data, width = alaw_to_l16(data), 2
    elif info.fmt is WavFormat.PCM:
        if width == 1:  # 8-bit WAV is unsigned
            data = audioop.bias(data, 1, -128)
        if width != 2:
            data, width = audioop.lin2lin(data, width, 2), 2
    else:
        raise WavError(f"{info.fmt.name} WAV cannot be played into a call")
    if info.channels == 2:
        return audioop.tomono(data, 2, 0.5, 0.5)
    if info.channels > 2:  # keep the first channel of wider layouts
        step = 2 * info.channels
        return b"".join(data[i : i + 2] for i in range(0, len(data), step))
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
