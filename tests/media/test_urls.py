"""Stream tokens: round trip, forgery, expiry, uniqueness; stream URLs that survive /bin/sh."""

from __future__ import annotations

import base64
import dataclasses
import subprocess
from collections.abc import Callable

import pytest

from media_mgr.errors import Gone, NotFound
from media_mgr.media.urls import NONCE_BYTES, TOKEN_CHARS, StreamClaims, build_stream_url, issue, verify

SECRET = b"k" * 32
NOW = 1_800_000_000.0
MEDIA_ID = "0123456789abcdef0123456789abcdef"


def claims(**changes: object) -> StreamClaims:
    base = StreamClaims(
        media_id=MEDIA_ID, revision=3, format="mp3", rate=8000, stream_type="single", expires=int(NOW) + 7200
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "original",
    [
        claims(),
        claims(format="wav", rate=None, stream_type="continuous"),
        claims(kind="store", revision=0xFFFFFFFF),
        claims(kind="record", rate=48000),
    ],
)
def test_round_trip_returns_the_claims_with_their_nonce(original: StreamClaims) -> None:
    token = issue(SECRET, original, NOW)
    got = verify(SECRET, token, NOW)
    assert len(got.nonce) == NONCE_BYTES
    assert got == dataclasses.replace(original, nonce=got.nonce)


def test_token_is_compact_and_url_and_shell_safe() -> None:
    token = issue(SECRET, claims(), NOW)
    assert len(token) == TOKEN_CHARS <= 120
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_two_issues_for_the_same_claims_differ() -> None:
    tokens = {issue(SECRET, claims(), NOW) for _ in range(100)}
    assert len(tokens) == 100


def test_every_single_character_change_is_rejected() -> None:
    token = issue(SECRET, claims(), NOW)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i, ch in enumerate(token):
        other = alphabet[(alphabet.index(ch) + 1) % len(alphabet)]
        with pytest.raises(NotFound):
            verify(SECRET, token[:i] + other + token[i + 1 :], NOW)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1],
        lambda t: t + "A",
        lambda t: t + "=",
        lambda t: t.replace(t[5], "+", 1),
        lambda t: t.replace(t[5], "/", 1),
        lambda t: "",
        lambda t: "A" * len(t),
        lambda t: t.upper(),
    ],
)
def test_garbled_tokens_are_not_found(mangle: Callable[[str], str]) -> None:
    token = issue(SECRET, claims(), NOW)
    with pytest.raises(NotFound):
        verify(SECRET, mangle(token), NOW)


def test_wrong_secret_is_not_found() -> None:
    token = issue(SECRET, claims(), NOW)
    with pytest.raises(NotFound):
        verify(b"x" * 32, token, NOW)


def test_expired_token_is_gone_and_forged_expired_is_not_found() -> None:
    token = issue(SECRET, claims(expires=int(NOW) + 10), NOW)
    assert verify(SECRET, token, NOW + 9.9).media_id == MEDIA_ID
    with pytest.raises(Gone):
        verify(SECRET, token, NOW + 10)
    with pytest.raises(NotFound):  # the signature is checked before expiry: nothing leaks
        verify(b"x" * 32, token, NOW + 10)


def test_forged_payload_with_recomputed_base64_is_not_found() -> None:
    token = issue(SECRET, claims(), NOW)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[25] ^= 1  # revision's low byte: a different revision, same signature
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(NotFound):
        verify(SECRET, forged, NOW)


def test_invalid_claims_and_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="media_id"):
        claims(media_id="XYZ")
    with pytest.raises(ValueError, match="media_id"):
        claims(media_id=MEDIA_ID.upper())
    with pytest.raises(ValueError, match="32 bits"):
        claims(revision=-1)
    with pytest.raises(ValueError, match="rate"):
        claims(rate=0)
    with pytest.raises(ValueError, match="unknown"):
        claims(format="ogg")
    with pytest.raises(ValueError, match="expired"):
        issue(SECRET, claims(expires=int(NOW)), NOW)
    with pytest.raises(ValueError, match="16 bytes"):
        issue(b"short", claims(), NOW)
    with pytest.raises(ValueError, match="nonce"):
        issue(SECRET, claims(), NOW, nonce=b"x")


def test_fixed_nonce_gives_a_reproducible_token() -> None:
    nonce = bytes(range(NONCE_BYTES))
    assert issue(SECRET, claims(), NOW, nonce=nonce) == issue(SECRET, claims(), NOW, nonce=nonce)
    assert verify(SECRET, issue(SECRET, claims(), NOW, nonce=nonce), NOW).nonce == nonce


def test_stream_urls() -> None:
    token = issue(SECRET, claims(), NOW)
    assert (
        build_stream_url("http", "media.example", 24517, "single", token, "greeting", "wav")
        == f"http://media.example:24517/single/{token}/greeting.wav"
    )
    assert (
        build_stream_url("shout", "10.0.0.1", 24517, "continuous", token, "Hold music/2 & más;", "mp3")
        == f"shout://10.0.0.1:24517/continuous/{token}/Hold%20music%2F2%20%26%20m%C3%A1s%3B.mp3"
    )
    assert (
        build_stream_url("http", "::1", 80, "single", token, "", "wav")
        == f"http://[::1]:80/single/{token}/media.wav"
    )


@pytest.mark.parametrize(
    "args",
    [
        ("https", "h", 1, "single", "tok", "n", "wav"),
        ("shouts", "h", 1, "single", "tok", "n", "wav"),
        ("http", "h/x", 1, "single", "tok", "n", "wav"),
        ("http", "user@h", 1, "single", "tok", "n", "wav"),
        ("http", "h", 0, "single", "tok", "n", "wav"),
        ("http", "h", 1, "store", "tok", "n", "wav"),
        ("http", "h", 1, "single", "to/k", "n", "wav"),
        ("http", "h", 1, "single", "tok", "n", "w;av"),
    ],
)
def test_bad_url_parts_are_refused(args: tuple[str, str, int, str, str, str, str]) -> None:
    with pytest.raises(ValueError):
        build_stream_url(*args)  # type: ignore[arg-type]


def test_url_goes_through_sh_unchanged_even_unquoted() -> None:
    token = issue(SECRET, claims(), NOW)
    url = build_stream_url("http", "127.0.0.1", 24517, "single", token, "a b&c;d'e\"f$(g)`h`", "wav")
    out = subprocess.run(["/bin/sh", "-c", f"printf %s {url}"], check=True, capture_output=True, text=True)
    assert out.stdout == url
