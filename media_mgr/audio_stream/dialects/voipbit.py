"""voipbit/mod_audio_stream's JSON dialect: text frames <-> typed events; pure (reference Part A).

The module pretty-prints with tabs, so frames are parsed, never compared. Every field is checked
before it is used (``fields.py``): a field of the wrong type, out of range or not valid text makes
the frame a bad frame (dropped and counted, ``BadInput``), never an error of ours. It sends ``start`` once
(first frame of the first connection), then one ``media`` per track per 20 ms with base64 audio
and a media clock (``chunk`` from 1, ``timestamp`` a string of epoch ms), ``stop`` only on graceful
shutdown; ``playedStream``, ``media.cleared`` and ``incorrectPayload`` answer our messages.
Arbitrary text (``send_text``) is legal, so text that is not an event is reported, not refused.
What we send back is what the code accepts (A4), not what its README shows.

Its format is in ``start``; a stream that reconnects to us without one (it never repeats it, A1.8)
still shows it: every payload is exactly 20 ms, so its length gives the rate (and mu-law at 160
bytes), and ``both`` streams alternate outbound then inbound in each tick. Audio is placed by its
``chunk`` counter, so a burst after a stall keeps its place.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import orjson

from media_mgr.audio.g711 import ulaw_to_l16
from media_mgr.audio_stream.dialects import fields
from media_mgr.audio_stream.dialects.base import Dialect, Join, Placement, PlayEncoder
from media_mgr.audio_stream.events import (
    TRACKS,
    Audio,
    BadInput,
    Cleared,
    Encoding,
    Event,
    IncorrectPayload,
    Media,
    Played,
    Start,
    Stop,
    Text,
    Track,
)
from media_mgr.audio_stream.formats import FormatHint, StreamFormat

SUBPROTOCOL = "audio.freeswitch.org"
ENCODINGS: dict[str, Encoding] = {"audio/x-l16": "l16", "audio/x-mulaw": "mulaw"}
PLAY_RATES = (8000, 16000)  # the only rates the module honours in media.play (A4.1)
MAX_RATE = 48000
_L16_SIZES = {320 * r // 8000: r for r in (8000, 16000, 24000, 32000, 48000)}
EARLY_MESSAGES = 2  # a stream without start: its tracks are known after one tick
EARLY_WAIT = 0.2  # ... or after this long


def looks_like_voipbit(text: str) -> bool:
    """Whether a first text frame is this dialect (``start``/``media``/``stop``), not metadata."""
    obj = fields.json_object(text)
    return isinstance(obj, dict) and obj.get("event") in ("start", "media", "stop")


def parse(text: str) -> Event:
    """One text frame -> an event; ``BadInput`` for a protocol event we cannot use."""
    obj = fields.json_object(text)
    if obj is fields.NOT_JSON:
        return Text(text, "not JSON (send_text?)")
    if not isinstance(obj, dict):
        return Text(text, "JSON that is not an object")
    event = obj.get("event")
    if not isinstance(event, str):
        return Text(text, "JSON without an event")
    match event:
        case "media":
            return _media(obj)
        case "start":
            return _start(obj)
        case "stop":
            stop = obj.get("stop")
            call_id = stop.get("callId") if isinstance(stop, dict) else None
            return Stop(call_id if isinstance(call_id, str) else None)
        case "playedStream":
            name = obj.get("name")
            return Played(fields.clean(name, 200) if isinstance(name, str) else "")
        case "media.cleared":
            return Cleared()
        case "incorrectPayload":
            payload = obj.get("payload")
            return IncorrectPayload(fields.clean(payload, 1000) if isinstance(payload, str) else "")
    return Text(text, f"unknown event {event[:40]!r}")


def media_fast(raw: bytes | memoryview) -> tuple[Track, int, bytes, object] | None:
    """The hot path's parse of the one message that comes 50 times a second per track: a ``media``
    with a ``chunk``, a ``track`` and a valid ``timestamp``. One ``orjson.loads`` of the frame's
    bytes (it checks UTF-8 itself), the fields checked as ``_media`` checks them, no event built:
    (track, chunk, audio, the raw ``stream_id``). None for anything else, which then goes through
    ``parse`` (so every refusal, and every difference between orjson and json, is decided there)."""
    try:
        obj = orjson.loads(raw)
    except ValueError:
        return None
    if type(obj) is not dict or obj.get("event") != "media":
        return None
    media = obj.get("media")
    if type(media) is not dict:
        return None
    track, chunk, payload = media.get("track"), media.get("chunk"), media.get("payload")
    if type(chunk) is not int or not 1 <= chunk <= fields.MAX_COUNTER or type(payload) is not str:
        return None
    stamp = media.get("timestamp")
    if stamp is not None and (
        type(stamp) is not str or not 0 < len(stamp) <= fields.MAX_TIMESTAMP_DIGITS
        or not stamp.isascii() or not stamp.isdigit()
    ):  # fmt: skip
        return None
    if track == "inbound":
        known: Track = "inbound"
    elif track == "outbound":
        known = "outbound"
    else:
        return None
    try:
        audio = binascii.a2b_base64(payload, strict_mode=True)  # base64.b64decode(validate=True)
    except (binascii.Error, ValueError):
        return None
    return known, chunk, audio, obj.get("stream_id")


def _start(obj: dict[str, Any]) -> Start:
    start = obj.get("start")
    if not isinstance(start, dict):
        raise BadInput("start without a start object", fatal=True)
    fmt = start.get("mediaFormat")
    if not isinstance(fmt, dict):
        raise BadInput("start without mediaFormat", fatal=True)
    encoding = ENCODINGS.get(str(fmt.get("encoding", "")).lower())
    if encoding is None:
        raise BadInput(f"unsupported encoding {str(fmt.get('encoding'))[:40]!r}", fatal=True)
    rate = fmt.get("sampleRate")
    if not fields.is_int(rate) or rate % 8000 or not 8000 <= rate <= MAX_RATE:
        raise BadInput(
            f"unsupported sampleRate {str(rate)[:20]!r} (8000..48000, multiples of 8000)", fatal=True
        )
    raw_tracks = start.get("tracks")
    tracks = tuple(t for t in TRACKS if isinstance(raw_tracks, list) and t in raw_tracks)
    if not tracks:
        raise BadInput(f"start names no track in {str(raw_tracks)[:60]!r}", fatal=True)
    try:
        return Start(
            call_id=fields.ident(start.get("callId"), "callId") or "",
            stream_id=fields.ident(start.get("stream_id"), "stream_id") or "",
            tracks=tracks,
            encoding=encoding,
            rate=rate,
            extra_headers=fields.text(obj.get("extra_headers"), "extra_headers", fields.MAX_METADATA),
        )
    except BadInput as exc:
        raise BadInput(f"start with {exc.reason}", fatal=True) from None


def _media(obj: dict[str, Any]) -> Media:
    media = obj.get("media")
    if not isinstance(media, dict):
        raise BadInput("media without a media object")
    track = media.get("track")
    if track not in TRACKS:
        raise BadInput(f"media with unknown track {str(track)[:20]!r}")
    payload = media.get("payload")
    if not isinstance(payload, str):
        raise BadInput("media without a payload string")
    try:
        audio = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("media payload is not base64") from None
    known: Track = "inbound" if track == "inbound" else "outbound"
    return Media(
        stream_id=fields.ident(obj.get("stream_id"), "stream_id"),
        track=known,
        chunk=fields.counter(media.get("chunk"), "chunk"),
        timestamp_ms=fields.timestamp(media.get("timestamp")),
        payload=audio,
    )


# -- server -> module (A4): compact JSON, standard unwrapped base64, L16 little-endian mono ---------


def media_play(pcm: bytes, rate: int) -> str:
    if rate not in PLAY_RATES:
        raise ValueError(f"the module plays only {PLAY_RATES}, not {rate}")
    b64 = base64.b64encode(pcm).decode("ascii")
    media = {"payload": b64, "contentType": "audio/x-l16", "sampleRate": rate}
    return json.dumps({"event": "media.play", "media": media}, separators=(",", ":"))


def checkpoint(name: str) -> str:
    return json.dumps({"event": "media.checkpoint", "name": name}, separators=(",", ":"))


def clear() -> str:
    return '{"event":"media.clear"}'


class VoipbitPlay(PlayEncoder):
    """``media.play`` per 20 ms frame; ``media.checkpoint`` acknowledged by ``playedStream``."""

    acknowledged = True

    def audio(self, pcm: bytes, rate: int, checkpoint: str | None = None) -> str:
        return media_play(pcm, rate)

    def checkpoint(self, name: str) -> str:
        return checkpoint(name)

    def clear(self) -> str:
        return clear()


class VoipbitDialect(Dialect):
    name = "voipbit"
    subprotocols = (SUBPROTOCOL,)

    def __init__(self, hint: FormatHint, encoding_hint: str | None, *, metadata_timeout: float) -> None:
        super().__init__(hint, encoding_hint, metadata_timeout=metadata_timeout)
        self._seen: list[Track] = []  # tracks of the media that came before the format was known
        self._first_size: int | None = None
        self._chunk_base: int | None = None  # chunk counter at the stream's media time 0
        self._next: dict[Track, int] = {}  # per track: the position after its last chunk

    def parse(self, text: str | None, data: bytes | None) -> Event:
        if text is None:
            raise BadInput(f"binary frame of {len(data or b'')} bytes on a voipbit (JSON) stream")
        return parse(text)

    def join(self, url: str, event: Event) -> Join:
        stream_id = event.stream_id if isinstance(event, Start | Media) else None
        return Join(f"v|{url}|{stream_id or ''}", rejoin=isinstance(event, Media), takeover=True)

    def learn(self, event: Event) -> StreamFormat | None:
        if isinstance(event, Start):
            self._chunk_base = 0
            tracks = tuple(t for t in TRACKS if t in event.tracks)  # recording order: inbound left
            return StreamFormat(self.name, event.encoding, event.rate, tracks, (1,) * len(tracks), "start")
        if isinstance(event, Media):
            self._seen.append(event.track)
            if self._first_size is None:
                self._first_size = len(event.payload)
            if len(self._seen) >= EARLY_MESSAGES or len(set(self._seen)) == 2:
                return self._guess()
        return None

    def settle(self, waited: float | None) -> StreamFormat | None:
        if waited is None or waited >= EARLY_WAIT:
            return self._guess()
        return None

    def _guess(self) -> StreamFormat:
        """A stream that began with ``media``: format from the payload size, tracks from the first ones."""
        tracks = tuple(t for t in TRACKS if t in self._seen) or ("inbound",)
        size, encoding = self._first_size or 0, self.encoding_hint
        enc: Encoding = "mulaw" if encoding == "mulaw" else "l16"
        rate = self.hint.rate
        if rate is None:
            if size == 160 and encoding != "l16":
                enc, rate = "mulaw", 8000
            else:
                rate = _L16_SIZES.get(size, 8000)
        return StreamFormat(self.name, enc, rate, tracks, (1,) * len(tracks), "payload size")

    def place(self, event: Media | Audio, fmt: StreamFormat) -> Placement:
        if not isinstance(event, Media):
            raise BadInput("binary audio on a voipbit (JSON) stream")
        if event.track not in fmt.tracks:
            raise BadInput(f"media for track {event.track!r}, which this stream does not carry")
        track = fmt.tracks.index(event.track)
        chunk_bytes = fmt.frame_samples * (1 if fmt.encoding == "mulaw" else 2)
        payload = event.payload
        pcm = ulaw_to_l16(payload) if fmt.encoding == "mulaw" else payload[: len(payload) & ~1]
        if event.chunk is not None:
            if self._chunk_base is None:
                self._chunk_base = event.chunk - 1
            position = (event.chunk - 1 - self._chunk_base) * fmt.frame_samples
        else:
            position = self._next.get(event.track, 0)
        self._next[event.track] = position + len(pcm) // 2
        return Placement(track, position, pcm, irregular=len(payload) != chunk_bytes)

    def position_of(self, track: Track, chunk: int, size: int, fmt: StreamFormat) -> int | None:
        """``place`` for the hot path's common case (an L16 chunk of the regular size on a track the
        stream carries): its position; None for any other, which ``place`` then handles."""
        frame = fmt.frame_samples
        if size != 2 * frame or fmt.encoding != "l16" or track not in fmt.tracks:
            return None
        base = self._chunk_base
        if base is None:
            base = self._chunk_base = chunk - 1
        position = (chunk - 1 - base) * frame
        self._next[track] = position + frame
        return position

    def resume_state(self) -> dict[str, Any]:
        return {"chunk_base": self._chunk_base, "next": dict(self._next)}

    def resume(self, state: dict[str, Any]) -> None:
        base, nexts = state.get("chunk_base"), state.get("next")
        self._chunk_base = base if isinstance(base, int) else None
        if isinstance(nexts, dict):
            self._next = {t: p for t, p in nexts.items() if t in TRACKS and isinstance(p, int)}

    def cannot_play(self, fmt: StreamFormat) -> str | None:
        if fmt.tracks != ("inbound",):
            return (
                "mod_audio_stream plays audio only into streams whose track is inbound "
                f"(this one carries {', '.join(fmt.tracks)})"
            )
        return None

    def play_rate(self, fmt: StreamFormat) -> int:
        """The module honours only 8 and 16 kHz in media.play (A4.1)."""
        return 16000 if fmt.rate >= 16000 and fmt.encoding == "l16" else 8000

    def encoder(self, subprotocol: str | None) -> PlayEncoder:
        return VoipbitPlay()
