"""voipbit's JSON, as its code prints it (cJSON, tabs) and as its code accepts it back (reference A2, A4)."""

from __future__ import annotations

import base64
import json

import pytest

from media_mgr.audio_stream.dialects import voipbit
from media_mgr.audio_stream.events import (
    BadInput,
    Cleared,
    IncorrectPayload,
    Media,
    Played,
    Start,
    Stop,
    Text,
)


def pretty(obj: object) -> str:
    return json.dumps(obj, indent="\t").replace('": ', '":\t')


def test_start_is_parsed_from_the_pretty_printed_shape() -> None:
    start = voipbit.parse(pretty({"sequenceNumber": 0, "event": "start", "start": {
        "callId": "c-1", "stream_id": "s-1", "tracks": ["inbound", "outbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}, "extra_headers": '{"a":1}'}))  # fmt: skip
    assert start == Start("c-1", "s-1", ("inbound", "outbound"), "mulaw", 8000, '{"a":1}')
    assert voipbit.looks_like_voipbit(pretty({"event": "media"}))
    assert not voipbit.looks_like_voipbit('{"callId": "x"}')  # binary-dialect metadata


def test_media_keeps_its_media_clock_and_decodes_the_payload() -> None:
    audio = bytes(range(256)) + bytes(64)
    media = voipbit.parse(pretty({"sequenceNumber": 7, "stream_id": "s", "event": "media", "media": {
        "track": "inbound", "timestamp": "1726398123456", "chunk": 7,
        "payload": base64.b64encode(audio).decode()}, "extra_headers": "x" * 8000}))  # fmt: skip
    assert media == Media("s", "inbound", 7, 1726398123456, audio)


@pytest.mark.parametrize(("media", "why"), [({"track": "sideways", "payload": ""}, "track"),
                                             ({"track": "inbound"}, "payload"),
                                             ({"track": "inbound", "payload": "@@@@"}, "base64")])  # fmt: skip
def test_unusable_media_is_refused_but_not_fatal(media: dict[str, object], why: str) -> None:
    with pytest.raises(BadInput) as bad:
        voipbit.parse(json.dumps({"event": "media", "media": media}))
    assert why in bad.value.reason and not bad.value.fatal


def test_a_start_we_cannot_record_is_fatal() -> None:
    for fmt in (
        {"encoding": "audio/x-l16", "sampleRate": 44100},
        {"encoding": "audio/opus", "sampleRate": 8000},
    ):
        with pytest.raises(BadInput) as bad:
            voipbit.parse(
                json.dumps({"event": "start", "start": {"tracks": ["inbound"], "mediaFormat": fmt}})
            )
        assert bad.value.fatal


def test_control_events_and_text_that_is_no_event() -> None:
    assert voipbit.parse('{"event":"stop","stop":{"callId":"c"}}') == Stop("c")
    assert voipbit.parse('{"event":"playedStream","name":"greet","sequenceNumber":4}') == Played("greet")
    assert voipbit.parse('{"sequenceNumber":41,"streamId":"s","event":"media.cleared"}') == Cleared()
    assert voipbit.parse('{"event":"incorrectPayload","payload":"x"}') == IncorrectPayload("x")
    for text in ("hello from send_text", "[1]", '{"x": 1}', '{"event": "streamAudio"}'):
        assert isinstance(voipbit.parse(text), Text)


def test_what_we_send_is_what_the_module_code_accepts() -> None:
    pcm = bytes(range(250)) * 2 + bytes(1)  # odd length: padded base64
    play = json.loads(voipbit.media_play(pcm, 16000))
    assert play == {"event": "media.play", "media": {"payload": base64.b64encode(pcm).decode(),
                                                     "contentType": "audio/x-l16", "sampleRate": 16000}}  # fmt: skip
    assert "\n" not in play["media"]["payload"] and "-" not in play["media"]["payload"]
    assert isinstance(play["media"]["sampleRate"], int)
    assert json.loads(voipbit.checkpoint("greet")) == {"event": "media.checkpoint", "name": "greet"}
    assert json.loads(voipbit.clear()) == {"event": "media.clear"}
    with pytest.raises(ValueError):
        voipbit.media_play(pcm, 24000)  # the module would play it at a third of the speed
