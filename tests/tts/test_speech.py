"""Kazoo's TTS request rules, checked without an engine or a database."""

from __future__ import annotations

import pytest

from media_mgr.errors import InvalidRequest
from media_mgr.media.names import TtsRef, parse_media_name
from media_mgr.tts.speech import Speech, SpeechDefaults, TtsOptions, kazoo_language, speech_for

DEFAULTS = SpeechDefaults(engine="espeak", voice="male", language="en-us", max_text_chars=1000)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("en", "en-us"),
        ("EN", "en-us"),
        ("fr", "fr-fr"),
        ("de", "de-de"),
        ("en-gb", "en-gb"),
        ("pt_BR", "pt-br"),
    ],
)
def test_language_is_read_as_kazoo_reads_it(given: str, expected: str) -> None:
    assert kazoo_language(given) == expected


def test_defaults_are_kazoos_male_en_us() -> None:
    assert speech_for("Hello", None, DEFAULTS) == Speech("espeak", "male", "en-us", "Hello")


def test_text_key_wins_over_the_name_as_ecallmgr_4_sends_it() -> None:
    options = TtsOptions(text="Hello world", voice="female", language="en", engine="ESPEAK")
    speech = speech_for("9e107d9d372bb6826bd81d3542a419d6", options, DEFAULTS)
    assert speech == Speech("espeak", "female", "en-us", "Hello world")


@pytest.mark.parametrize("text", ["24/7 support", "50% off + more", "Grüße aus Köln", "a%2Fb"])
def test_text_in_the_name_is_taken_raw_like_old_ecallmgr_sends_it(text: str) -> None:
    ref = parse_media_name(f"tts://{text}")
    assert ref == TtsRef(text)
    assert speech_for(ref.text, None, DEFAULTS).text == text


def test_cache_key_differs_by_each_part() -> None:
    base = Speech("espeak", "male", "en-us", "Hello")
    others = [Speech("other", "male", "en-us", "Hello"), Speech("espeak", "female", "en-us", "Hello"),
              Speech("espeak", "male", "fr-fr", "Hello"), Speech("espeak", "male", "en-us", "Hello!")]  # fmt: skip
    assert len({base.key, *(s.key for s in others)}) == 5
    assert base.key == Speech("espeak", "male", "en-us", "Hello").key


@pytest.mark.parametrize(
    ("text", "options", "reason"),
    [
        ("", None, "empty"),
        ("9e107d9d372bb6826bd81d3542a419d6", None, "Kazoo's hash of the words: send them in Text"),
        ("   ", None, "empty"),
        ("x" * 1001, None, "at most 1000"),
        ("Hello\x1b[31m", None, "control characters"),
        ("Hello\nworld", None, "control characters"),
        ("Hello\x00", None, "control characters"),
        ("Hello", TtsOptions(voice="robot"), "neither male nor female"),
        ("Hello", TtsOptions(language="english!"), "language tag"),
        ("Hello", TtsOptions(language="en-us; rm -rf /"), "language tag"),
        ("Hello", TtsOptions(engine="../../bin/sh"), "not a name"),
    ],
)
def test_bad_requests_say_what_is_wrong(text: str, options: TtsOptions | None, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason.replace("!", "")):
        speech_for(text, options, DEFAULTS)
