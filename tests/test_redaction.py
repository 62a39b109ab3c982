"""Credentials are masked in every log line, whatever logged them."""

from __future__ import annotations

import json
import logging

import pytest

from media_mgr.logs import JsonFormatter
from media_mgr.redaction import Redactor, redact


@pytest.mark.parametrize(
    ("line", "secret_part", "kept"),
    [
        ('127.0.0.1 - "GET /single/AbCdEf_-123456/0123.wav HTTP/1.1" 200', "AbCdEf_-123456", "/0123.wav"),
        ("/continuous/tok-en_99/0123.mp3", "tok-en_99", "/0123.mp3"),
        ("PUT /store/st0reTok3n/abc.mp3", "st0reTok3n", "/abc.mp3"),
        ('"WebSocket /audio_stream?token=Zm9vYmFy%2F&rate=8000" [accepted]', "Zm9vYmFy%2F", "rate=8000"),
        ("shout://0123abcd:rec0rdT0ken@host:8000/0123abcd.mp3", "rec0rdT0ken", "0123abcd:***@host"),
        ("http://kazoo:pr0xyPass@127.0.0.1:24517/store/x/y.mp3", "pr0xyPass", "kazoo:"),
        ("authorization: Bearer adm1nT0ken", "adm1nT0ken", "Bearer"),
        ("Authorization: Basic a2F6b286cGFzcw==", "a2F6b286cGFzcw==", "Basic"),
    ],
)
def test_credential_shapes_are_masked(line: str, secret_part: str, kept: str) -> None:
    out = Redactor()(line)
    assert secret_part not in out
    assert kept in out


def test_registered_secrets_are_masked_anywhere_and_short_values_are_not_registered() -> None:
    r = Redactor(["the-admin-token", None, "ab"])
    assert r("KeyError: 'the-admin-token' in frame") == "KeyError: '***' in frame"
    assert r("ab is a word") == "ab is a word"


def test_ordinary_lines_are_unchanged() -> None:
    line = "GET /v1/media/0123456789abcdef0123456789abcdef?account_id=abc 200 in 3 ms"
    assert Redactor()(line) == line
    trace = 'File "/srv/media_mgr/store/owner_lock.py", line 97, in keep'  # debugging needs the file
    assert Redactor()(trace) == trace


def test_the_json_formatter_redacts_messages_and_extras() -> None:
    redact.add("formatter-secret-value")
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '"WebSocket %s" %s',
        ("/audio_stream?token=abc123", "[accepted]"),
        None,
    )
    record.stream_url = "http://h:1/single/t0ken/x.wav"
    record.note = "formatter-secret-value"
    entry = json.loads(JsonFormatter().format(record))
    assert "abc123" not in entry["msg"]
    assert "t0ken" not in entry["stream_url"]
    assert entry["note"] == "***"


def test_a_secret_with_quotes_is_masked_inside_the_json_line() -> None:
    redact.add('pa"ss\\word')
    record = logging.LogRecord("x", logging.INFO, __file__, 1, 'password is pa"ss\\word', (), None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "password is ***"
