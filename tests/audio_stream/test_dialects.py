"""What every dialect promises the session, checked against each (as uvicorn runs its protocol
tests against every protocol class): frames become placed audio with nothing lost or moved, a format
is always settled on, and playback comes out as JSON its module takes."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from media_mgr.audio_stream import dialects
from media_mgr.audio_stream.dialects.base import Dialect
from media_mgr.audio_stream.dialects.binary import BinaryDialect
from media_mgr.audio_stream.dialects.voipbit import VoipbitDialect
from media_mgr.audio_stream.events import Audio, Media
from media_mgr.audio_stream.formats import FormatHint, StreamFormat

RATE = 8000


@pytest.fixture(params=[VoipbitDialect, BinaryDialect], ids=lambda cls: cls.name)
def dialect(request: pytest.FixtureRequest) -> Dialect:
    cls: type[Dialect] = request.param
    return cls(FormatHint(), None, metadata_timeout=1.0)


def frame(dialect: Dialect, pcm: bytes, n: int) -> str | bytes:
    """The ``n``-th 20 ms message of a mono stream, as this dialect's module sends it."""
    if isinstance(dialect, VoipbitDialect):
        media = {"track": "inbound", "chunk": n, "timestamp": str(1000 + 20 * n),
                 "payload": base64.b64encode(pcm).decode()}  # fmt: skip
        return json.dumps({"event": "media", "stream_id": "s", "media": media}, indent="\t")
    return pcm


def parse(dialect: Dialect, message: str | bytes) -> Media | Audio:
    event = dialect.parse(message, None) if isinstance(message, str) else dialect.parse(None, message)
    assert isinstance(event, Media | Audio)
    return event


def test_the_first_frame_picks_the_dialect(dialect: Dialect) -> None:
    first = frame(dialect, bytes(320), 1)
    picked = dialects.pick(first if isinstance(first, str) else None, FormatHint(), None, metadata_timeout=1)
    assert type(picked) is type(dialect)
    assert set(dialect.subprotocols) <= set(dialects.SUBPROTOCOLS)


def test_audio_is_placed_back_to_back_sample_for_sample(dialect: Dialect) -> None:
    pcm = np.random.default_rng(4).integers(-9000, 9000, RATE, dtype="<i2").tobytes()
    events = [parse(dialect, frame(dialect, pcm[i : i + 320], i // 320 + 1)) for i in range(0, len(pcm), 320)]
    fmt = None
    for event in events:
        fmt = fmt or dialect.learn(event)
    fmt = fmt or dialect.settle(None)
    assert fmt is not None and (fmt.rate, fmt.channels) == (RATE, 1)
    out = np.zeros(RATE, dtype="<i2")
    for event in events:
        placed = dialect.place(event, fmt)
        assert (placed.track, placed.irregular) == (0, False)
        out[placed.position : placed.position + len(placed.pcm) // 2] = np.frombuffer(placed.pcm, "<i2")
    assert out.tobytes() == pcm


def test_a_format_is_always_settled_on_in_the_end(dialect: Dialect) -> None:
    dialect.learn(parse(dialect, frame(dialect, bytes(320), 1)))
    assert dialect.settle(0.0) is None  # not yet: the format may still come
    fmt = dialect.settle(None)  # the stream ends, or holds too much early audio
    assert isinstance(fmt, StreamFormat)
    assert fmt.dialect == dialect.name


@pytest.mark.parametrize("subprotocol", [None, "audio.drachtio.org", "audio.freeswitch.org"])
def test_playback_is_json_carrying_the_audio(dialect: Dialect, subprotocol: str | None) -> None:
    fmt = dialect.settle(None)
    assert fmt is not None and dialect.cannot_play(fmt) is None
    rate = dialect.play_rate(fmt)
    encoder = dialect.encoder(subprotocol)
    pcm = bytes(range(256)) * 5
    message = json.loads(encoder.audio(pcm, rate))
    assert base64.b64encode(pcm).decode() in json.dumps(message)
    assert json.loads(encoder.clear())
    if encoder.acknowledged:
        assert json.loads(encoder.checkpoint("cp"))["name"] == "cp"
