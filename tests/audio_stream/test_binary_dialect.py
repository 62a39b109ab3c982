"""The binary dialect's format hints (URL query, metadata) and its playback JSON (reference B, C)."""

from __future__ import annotations

import base64
import json

from media_mgr.audio_stream import formats
from media_mgr.audio_stream.dialects import binary
from media_mgr.audio_stream.dialects.binary import BinaryDialect
from media_mgr.audio_stream.dialects.voipbit import VoipbitDialect
from media_mgr.audio_stream.events import Audio, EndOfStream, Media, Metadata, Text
from media_mgr.audio_stream.formats import FormatHint


def test_rates_are_read_as_the_modules_write_them() -> None:
    assert [formats.parse_rate(v) for v in ("8k", "16000", 24000, "48k")] == [8000, 16000, 24000, 48000]
    assert [formats.parse_rate(v) for v in ("44100", "11k", "fast", True)] == [None, None, None, None]


def test_url_and_metadata_hints_in_either_module_spelling() -> None:
    assert formats.hint_from({"sampleRate": "16k", "mode": "stereo"}) == FormatHint(16000, 2)
    assert formats.hint_from({"sample_rate": 8000, "mix_type": "mixed", "callId": "u"}) == FormatHint(
        8000, 1, "u"
    )
    assert binary.parse_metadata('{"sampleRate": 24000, "channels": 2}') == Metadata(
        '{"sampleRate": 24000, "channels": 2}', 24000, 2)  # fmt: skip
    assert binary.parse_metadata("free text") == Metadata("free text")
    assert isinstance(binary.parse_text("stop bye", metadata_seen=True), Text)


def test_the_url_wins_over_the_metadata_and_8k_mono_is_the_default() -> None:
    dialect = BinaryDialect(FormatHint(16000), None, metadata_timeout=1.0)
    fmt = dialect.learn(binary.parse_metadata('{"sampleRate": 8000, "channels": 2}'))
    assert fmt is not None and (fmt.rate, fmt.channels, fmt.learnt_from) == (16000, 2, "url")
    unsaid = BinaryDialect(FormatHint(), None, metadata_timeout=1.0)
    assert unsaid.learn(Metadata("no format here")) is None
    assert unsaid.settle(0.5) is None  # still waiting for a metadata frame
    default = unsaid.settle(1.0)
    assert default is not None and (default.rate, default.channels, default.learnt_from) == (
        8000,
        1,
        "default",
    )


def test_a_voipbit_stream_without_start_is_known_by_its_payload_size() -> None:
    both = VoipbitDialect(FormatHint(), None, metadata_timeout=1.0)
    assert both.learn(Media("s", "outbound", 1, None, bytes(640))) is None
    fmt = both.learn(Media("s", "inbound", 1, None, bytes(640)))
    assert fmt is not None and (fmt.rate, fmt.tracks, fmt.channels) == (16000, ("inbound", "outbound"), 2)
    mulaw = VoipbitDialect(FormatHint(), None, metadata_timeout=1.0)
    assert mulaw.learn(Media("s", "inbound", 1, None, bytes(160))) is None
    fmt = mulaw.settle(0.2)
    assert fmt is not None and (fmt.encoding, fmt.rate, fmt.tracks) == ("mulaw", 8000, ("inbound",))


def test_odd_frames_stay_sample_aligned_and_an_empty_frame_ends_the_stream() -> None:
    framer = binary.Framer(4)
    first, second = framer.feed(bytes(range(7))), framer.feed(bytes(range(7, 12)))
    assert (first, second, framer.misaligned) == (bytes(range(4)), bytes(range(4, 12)), 1)
    assert binary.parse_frame(bytes(3)) == Audio(bytes(3))
    assert isinstance(binary.parse_frame(b""), EndOfStream)


def test_playback_json_of_amigniter_and_mod_audio_fork() -> None:
    pcm = bytes(640)
    amigniter = json.loads(binary.stream_audio(pcm, 16000, "greet"))
    assert amigniter == {"type": "streamAudio", "data": {"audioDataType": "raw", "sampleRate": 16000,
                         "audioData": base64.b64encode(pcm).decode(), "checkpoint": "greet"}}  # fmt: skip
    fork = json.loads(binary.play_audio(pcm, 8000))
    assert fork["type"] == "playAudio" and fork["data"]["audioContentType"] == "raw"
    assert json.loads(binary.kill_audio()) == {"type": "killAudio"}


def test_only_the_first_text_is_metadata_even_when_the_url_gave_the_format() -> None:
    dialect = BinaryDialect(FormatHint(16000), None, metadata_timeout=1.0)
    assert isinstance(dialect.parse('{"callId": "x"}', None), Metadata)
    assert isinstance(dialect.parse("stop: bye", None), Text)  # counted against the flood allowance
