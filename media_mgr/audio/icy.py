"""ICY (SHOUTcast/Icecast) in-band metadata: interleave it for a listener who asked, strip it on read.

Done the way Icecast's ``format_mp3.c`` does, not Kazoo's way: a metadata field after every exactly
``metaint`` audio bytes, counted across chunk boundaries; the title block first, then a single
``0x00`` until the title changes; no zero padding at the end, so the last partial block just ends.
Kazoo's padded variant made mod_shout's decoder fail (reference/shout_and_shell_stream.md 2.6), and
the whole thing is only for clients that send ``Icy-MetaData: 1``. Sans-I/O: bytes in, bytes out.
"""

from __future__ import annotations

import enum
import re
from collections.abc import AsyncIterable, AsyncIterator

_MAX_BLOCKS = 255
_TITLE_RE = re.compile(r"StreamTitle='(.*?)';(?=[A-Za-z]+=|$)", re.DOTALL)


def clean_title(title: str) -> str:
    """The title as it can travel: no control characters, ``'`` as ``’`` (a quote would end it)."""
    return "".join(ch for ch in title if ch.isprintable()).replace("'", "\u2019")


def metadata_block(title: str) -> bytes:
    """One full metadata field: a length byte N, then N*16 bytes of ``StreamTitle='...';`` and NULs.

    Titles too long for 255*16 bytes are cut at a character boundary.
    """
    text = clean_title(title)
    limit = _MAX_BLOCKS * 16 - len("StreamTitle='';")
    encoded = text.encode()
    if len(encoded) > limit:
        encoded = encoded[:limit].decode(errors="ignore").encode()
    payload = b"StreamTitle='" + encoded + b"';"
    blocks = -(-len(payload) // 16)
    return bytes([blocks]) + payload.ljust(blocks * 16, b"\x00")


class IcyInterleaver:
    """Adds metadata to an audio stream for one listener; feed chunks of any size, in order."""

    def __init__(self, metaint: int, title: str) -> None:
        if metaint <= 0:
            raise ValueError(f"metaint must be positive, not {metaint}")
        self.metaint = metaint
        self._until_meta = metaint
        self._pending: bytes | None = metadata_block(title)
        self._title = title

    def set_title(self, title: str) -> None:
        """Send ``title`` in the next metadata field (nothing happens when it is unchanged)."""
        if title != self._title:
            self._title = title
            self._pending = metadata_block(title)

    def feed(self, audio: bytes) -> bytes:
        """The bytes to send for ``audio``: the same audio with metadata fields where they fall."""
        out: list[bytes] = []
        view = memoryview(audio)
        while view:
            take = min(self._until_meta, len(view))
            out.append(bytes(view[:take]))
            view = view[take:]
            self._until_meta -= take
            if self._until_meta == 0:
                out.append(self._pending if self._pending is not None else b"\x00")
                self._pending = None
                self._until_meta = self.metaint
        return b"".join(out)


def framed_length(audio_bytes: int, metaint: int, title: str) -> int:
    """The size ``interleave`` gives ``audio_bytes`` of audio: known up front, so the response can
    carry Content-Length (HTTP/1.0 players such as mpg123 cannot read a chunked body)."""
    fields = audio_bytes // metaint
    return audio_bytes + (len(metadata_block(title)) + fields - 1 if fields else 0)


async def interleave(source: AsyncIterable[bytes], metaint: int, title: str) -> AsyncIterator[bytes]:
    """``source`` with ICY metadata every ``metaint`` bytes: the body for an ``Icy-MetaData: 1`` GET."""
    framer = IcyInterleaver(metaint, title)
    async for chunk in source:
        if out := framer.feed(chunk):
            yield out


class _State(enum.Enum):
    AUDIO = "audio"
    LENGTH = "length"
    META = "meta"


class IcyStripper:
    """Reads an ICY stream back: clean audio out of ``feed``, every title seen in ``titles``."""

    def __init__(self, metaint: int) -> None:
        if metaint <= 0:
            raise ValueError(f"metaint must be positive, not {metaint}")
        self.metaint = metaint
        self.titles: list[str] = []
        self._state = _State.AUDIO
        self._left = metaint
        self._meta = bytearray()

    @property
    def at_block_boundary(self) -> bool:
        """False while inside a metadata field: a stream ending now was cut short."""
        return self._state is not _State.META

    def feed(self, data: bytes) -> bytes:
        """The audio bytes in ``data``, metadata removed (and parsed into ``titles``)."""
        audio: list[bytes] = []
        view = memoryview(data)
        while view:
            if self._state is _State.AUDIO:
                take = min(self._left, len(view))
                audio.append(bytes(view[:take]))
                view, self._left = view[take:], self._left - take
                if self._left == 0:
                    self._state = _State.LENGTH
            elif self._state is _State.LENGTH:
                self._left, view = view[0] * 16, view[1:]
                self._state = _State.META if self._left else _State.AUDIO
                self._left = self._left or self.metaint
            else:
                take = min(self._left, len(view))
                self._meta += view[:take]
                view, self._left = view[take:], self._left - take
                if self._left == 0:
                    self._end_meta()
        return b"".join(audio)

    def _end_meta(self) -> None:
        text = bytes(self._meta).split(b"\x00", 1)[0].decode(errors="replace")
        if match := _TITLE_RE.search(text):
            self.titles.append(match.group(1))
        self._meta.clear()
        self._state, self._left = _State.AUDIO, self.metaint


def strip_icy(data: bytes, metaint: int) -> tuple[bytes, list[str]]:
    """(audio, titles) of a whole ICY body; raises ``ValueError`` if it ends inside a metadata field."""
    stripper = IcyStripper(metaint)
    audio = stripper.feed(data)
    if not stripper.at_block_boundary:
        raise ValueError("ICY stream ends inside a metadata field")
    return audio, stripper.titles
