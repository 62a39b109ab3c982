"""The binary dialect (amigniter's mod_audio_stream, drachtio's mod_audio_fork): frames <-> events; pure.

Audio is raw s16le in binary frames, mono (or mixed) or stereo interleaved with the caller left
(reference B4). Nothing in a frame says the rate or the channel count: they come from the URL query
(``?rate=16000&channels=2``, ``?sampleRate=16k&mode=stereo``) or from the metadata text frame, which
may come after the first audio frames (B3) or never. Any other text is an application message.
Frames need not be 20 ms and may be a few samples off (resampler): duration comes from the bytes,
and a frame that ends inside a sample frame leaves its last bytes for the next one (``Framer``).
Without a rate in the URL or the metadata within ``metadata_timeout``, amigniter's default applies:
8 kHz mono.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from media_mgr.audio_stream.dialects import fields
from media_mgr.audio_stream.dialects.base import Dialect, Join, Placement, PlayEncoder
from media_mgr.audio_stream.events import Audio, BadInput, EndOfStream, Event, Media, Metadata, Text, Track
from media_mgr.audio_stream.formats import FormatHint, StreamFormat, hint_from

SUBPROTOCOL_FORK = "audio.drachtio.org"
DEFAULT_RATE = 8000


def parse_metadata(text: str) -> Metadata:
    """What a metadata frame says about the format; JSON that is no object, or none, says nothing."""
    obj = fields.json_object(text)
    if not isinstance(obj, dict):
        return Metadata(text)
    hint = hint_from(obj)
    return Metadata(text, hint.rate, hint.channels, hint.call_id)


def parse_text(text: str, *, metadata_seen: bool) -> Event:
    """The first text frame is metadata; later ones are application text (amigniter's ``stop <text>``)."""
    if not metadata_seen:
        return parse_metadata(text)
    return Text(text, "text after the metadata")


def parse_frame(data: bytes) -> Event:
    """A binary frame: audio, or (zero bytes) mod_audio_fork's end of stream."""
    return Audio(data) if data else EndOfStream()


class Framer:
    """Keeps audio aligned to whole sample frames when a peer sends a byte count that is not one:
    the bytes of a split sample frame wait for the next message instead of being dropped, so no
    sample after them shifts."""

    def __init__(self, block_align: int) -> None:
        self.block_align = block_align
        self._carry = b""
        self.misaligned = 0  # messages that ended inside a sample frame

    @property
    def carrying(self) -> bool:
        return bool(self._carry)

    def feed(self, data: bytes) -> bytes:
        """Whole sample frames of what came so far; the rest is kept for the next message."""
        if self._carry:
            data = self._carry + data
        cut = len(data) - len(data) % self.block_align
        if cut != len(data):
            self.misaligned += 1
        self._carry = data[cut:]
        return data[:cut]


# -- server -> module: JSON the modules turn into a file for the FreeSWITCH app to play (B5, C) --------


def stream_audio(pcm: bytes, rate: int, checkpoint: str | None = None) -> str:
    """amigniter's ``streamAudio``; extra ``data`` keys come back in its ``::play`` event."""
    data: dict[str, Any] = {"audioDataType": "raw", "sampleRate": rate, "audioData": _b64(pcm)}
    if checkpoint is not None:
        data["checkpoint"] = checkpoint
    return json.dumps({"type": "streamAudio", "data": data}, separators=(",", ":"))


def play_audio(pcm: bytes, rate: int, checkpoint: str | None = None) -> str:
    """mod_audio_fork's ``playAudio``."""
    data: dict[str, Any] = {"audioContentType": "raw", "sampleRate": rate, "audioContent": _b64(pcm)}
    if checkpoint is not None:
        data["textContent"] = checkpoint
    return json.dumps({"type": "playAudio", "data": data}, separators=(",", ":"))


def kill_audio() -> str:
    return '{"type":"killAudio"}'


def _b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode("ascii")


class AmignitersPlay(PlayEncoder):
    """amigniter's ``streamAudio``: its app plays each message as a file; 1 s segments, paced."""

    acknowledged = False
    step = 1.0

    def audio(self, pcm: bytes, rate: int, checkpoint: str | None = None) -> str:
        return stream_audio(pcm, rate, checkpoint)

    def checkpoint(self, name: str) -> str:
        raise NotImplementedError("streamAudio carries its checkpoint with the audio")

    def clear(self) -> str:
        return kill_audio()


class ForkPlay(AmignitersPlay):
    """drachtio's mod_audio_fork: ``playAudio``, otherwise the same."""

    def audio(self, pcm: bytes, rate: int, checkpoint: str | None = None) -> str:
        return play_audio(pcm, rate, checkpoint)


class BinaryDialect(Dialect):
    name = "binary"
    subprotocols = (SUBPROTOCOL_FORK,)

    def __init__(self, hint: FormatHint, encoding_hint: str | None, *, metadata_timeout: float) -> None:
        super().__init__(hint, encoding_hint, metadata_timeout=metadata_timeout)
        self._metadata: FormatHint | None = None  # what the metadata said, once it came
        self._texts = 0  # text frames so far: the first is the metadata
        self._framer: Framer | None = None
        self._position = 0  # sample frames placed so far: the byte count is the only media clock

    def parse(self, text: str | None, data: bytes | None) -> Event:
        if data is not None:
            return parse_frame(data)
        assert text is not None
        self._texts += 1
        return parse_text(text, metadata_seen=self._texts > 1)

    def join(self, url: str, event: Event) -> Join:
        """An ixwebsocket build of amigniter re-sends its metadata first on every reconnect (B2)."""
        if isinstance(event, Metadata):
            return Join(f"b|{url}", rejoin=True, metadata=event.text)
        return Join(f"b|{url}")

    def learn(self, event: Event) -> StreamFormat | None:
        if isinstance(event, Metadata):
            self._metadata = FormatHint(event.rate, event.channels, event.call_id)
        return self._known()

    def settle(self, waited: float | None) -> StreamFormat | None:
        if waited is not None and waited < self.metadata_timeout:
            return None
        return self._known() or self._format(DEFAULT_RATE, "default")

    def _known(self) -> StreamFormat | None:
        """The format once the URL or the metadata gave a rate (the URL wins)."""
        rate = self.hint.rate or (self._metadata.rate if self._metadata else None)
        if rate is None:
            return None
        return self._format(rate, "url" if self.hint.rate else "metadata")

    def _format(self, rate: int, source: str) -> StreamFormat:
        channels = self.hint.channels or (self._metadata.channels if self._metadata else None) or 1
        tracks: tuple[Track, ...] = ("inbound", "outbound") if channels == 2 else ("inbound",)
        return StreamFormat(self.name, "l16", rate, tracks, (channels,), source)

    def place(self, event: Media | Audio, fmt: StreamFormat) -> Placement:
        if not isinstance(event, Audio):
            raise BadInput("voipbit media on a binary stream")
        framer = self._framer_for(fmt)
        misaligned = framer.misaligned
        pcm = framer.feed(event.pcm)
        position = self._position
        self._position += len(pcm) // framer.block_align
        return Placement(0, position, pcm, irregular=framer.misaligned != misaligned)

    def position_of(self, size: int, fmt: StreamFormat) -> int | None:
        """``place`` for the hot path's common case (whole sample frames, nothing carried from the
        last message): the frame's position, the media clock moved on; None for any other."""
        framer = self._framer_for(fmt)
        block = framer.block_align
        if size % block or framer.carrying:
            return None
        position = self._position
        self._position = position + size // block
        return position

    def _framer_for(self, fmt: StreamFormat) -> Framer:
        framer = self._framer
        if framer is None:
            framer = self._framer = Framer(2 * fmt.channels)  # L16: two bytes a sample
        return framer

    def resume_state(self) -> dict[str, Any]:
        return {"position": self._position}

    def resume(self, state: dict[str, Any]) -> None:
        position = state.get("position")
        self._position = position if isinstance(position, int) and position >= 0 else 0

    def cannot_play(self, fmt: StreamFormat) -> str | None:
        return None

    def play_rate(self, fmt: StreamFormat) -> int:
        """These modules write the audio into a file at the rate we say: the stream's own."""
        return fmt.rate

    def encoder(self, subprotocol: str | None) -> PlayEncoder:
        return ForkPlay() if subprotocol == SUBPROTOCOL_FORK else AmignitersPlay()
