"""Kazoo Media-Name grammar -> a typed reference (reference 2.2, ``kz_media_url`` / ``kz_media_file``).

Pure: no I/O. The parser only decides *what* a name points at; whether it exists is the catalog's
question, so media ids are kept permissive (non-empty, no ``/``, no control characters).

Forms accepted (segments split on ``/``, empty ones dropped, each percent-decoded like Kazoo's
``kz_http_util:urldecode``, where ``+`` also means a space):

- ``tts://<text>``                                 -> ``TtsRef`` (raw: see ``_parse_tts``)
- ``prompt://<account_id|system_media>/<prompt_id>[/<lang>]`` -> ``PromptRef``
- ``<media_id>``, ``/system_media/<media_id>``     -> ``MediaIdRef(None, media_id)``
- ``/system_media/<lang>/<prompt_id>``             -> ``SystemPromptRef``
- ``/<account_db>/<media_id>[/<attachment>]``      -> ``MediaIdRef(account_id, media_id)``

``<account_db>`` is a raw 32-hex account id, ``account%2Fxx%2Fyy%2Frest`` or ``account/xx/yy/rest``;
it is always normalised to the lower-case 32-hex id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import quote, unquote_plus

from media_mgr.errors import InvalidRequest
from media_mgr.ids import is_hex32

SYSTEM_MEDIA = "system_media"
TTS_SCHEME = "tts://"
PROMPT_SCHEME = "prompt://"
MAX_NAME_LENGTH = 2048

_ACCOUNT_DB = re.compile(r"account/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{28})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


class InvalidMediaName(InvalidRequest):
    """A Media-Name that fits none of Kazoo's forms; Kazoo's ``invalid_media_name``."""

    code = "invalid_media_name"


@dataclass(frozen=True)
class MediaIdRef:
    """One stored item by id; ``account_id`` None means system media."""

    account_id: str | None
    media_id: str


@dataclass(frozen=True)
class SystemPromptRef:
    """A system prompt named by language and prompt id (Kazoo doc ``<lang>/<prompt_id>``)."""

    language: str
    prompt_id: str


@dataclass(frozen=True)
class PromptRef:
    """``prompt://``: resolved through the prompt maps with language fallback; None = system / default."""

    account_id: str | None
    prompt_id: str
    language: str | None


@dataclass(frozen=True)
class TtsRef:
    """``tts://<text>``: the text as ecallmgr put it there (4.x puts a hash there and sends ``Text``)."""

    text: str


MediaRef: TypeAlias = MediaIdRef | SystemPromptRef | PromptRef | TtsRef


def parse_media_name(name: str) -> MediaRef:
    """Parse a Media-Name as it arrives in a media_req; raises ``InvalidMediaName``."""
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidMediaName(f"media name must be 1 to {MAX_NAME_LENGTH} characters")
    if name.startswith(TTS_SCHEME):
        return _parse_tts(name[len(TTS_SCHEME) :])
    if name.startswith(PROMPT_SCHEME):
        return _parse_prompt(name[len(PROMPT_SCHEME) :])
    if _SCHEME.match(name):
        raise InvalidMediaName(f"unsupported media name scheme in {name!r}")
    return _parse_path(_segments(name))


def account_id_from_db(text: str) -> str | None:
    """The 32-hex account id in a raw id or an (encoded or not) account db name; None if it is neither."""
    lowered = text.lower().replace("%2f", "/")
    if is_hex32(lowered):
        return lowered
    match = _ACCOUNT_DB.fullmatch(lowered)
    return "".join(match.groups()) if match else None


def language_keys(language: str) -> list[str]:
    """Kazoo's ``kz_media_map:language_keys/1``: most specific first ("en-us" -> ["en-us", "en"])."""
    lang = language.lower()
    keys: list[str] = []
    while True:
        if len(lang) == 2:
            return [*keys, lang]
        if len(lang) == 5 and lang[2] == "-":
            keys.append(lang)
            lang = lang[:2]
        elif len(lang) == 11 and lang[5] == "_":
            keys.append(lang)
            lang = lang[:5]
        else:
            return [*keys, lang]


def media_name_for(account_id: str | None, media_id: str, prompt_id: str | None, language: str | None) -> str:
    """The canonical Media-Name of a stored record; ``parse_media_name`` reads it back to the same item."""
    if account_id is not None:
        return f"/{account_id}/{_quote(media_id)}"
    if prompt_id and language:
        return f"/{SYSTEM_MEDIA}/{_quote(language.lower())}/{_quote(prompt_id)}"
    return f"/{SYSTEM_MEDIA}/{_quote(media_id)}"


def _quote(segment: str) -> str:
    return quote(segment, safe="")


def _segments(text: str) -> list[str]:
    out = []
    for raw in text.split("/"):
        if not raw:
            continue
        try:
            segment = unquote_plus(raw, errors="strict")
        except UnicodeDecodeError:
            raise InvalidMediaName(f"segment {raw!r} is not percent-encoded UTF-8") from None
        if not segment:
            continue
        if _CONTROL.search(segment):
            raise InvalidMediaName(f"segment {raw!r} contains control characters")
        out.append(segment)
    return out


def _parse_tts(text: str) -> TtsRef:
    """Kept as sent: ecallmgr writes ``tts://`` + the text unencoded, so ``/``, ``%`` and ``+`` are text.

    An empty remainder is allowed here (the request's ``Text`` may carry the words); the TTS service
    refuses empty text and control characters with reasons of its own.
    """
    return TtsRef(text)


def _parse_prompt(path: str) -> PromptRef:
    parts = _segments(path)
    if len(parts) not in (2, 3):
        raise InvalidMediaName("prompt names are prompt://<account_id|system_media>/<prompt_id>[/<lang>]")
    owner, prompt_id = parts[0], parts[1]
    language = parts[2].lower() if len(parts) == 3 else None
    if "/" in prompt_id or (language is not None and "/" in language):
        raise InvalidMediaName(f"bad prompt path {path!r}")
    return PromptRef(_owner(owner), prompt_id, language)


def _owner(db: str) -> str | None:
    """``system_media`` -> None, an account db or id -> the 32-hex id."""
    if db == SYSTEM_MEDIA:
        return None
    account_id = account_id_from_db(db)
    if account_id is None:
        raise InvalidMediaName(f"{db!r} is neither system_media nor an account")
    return account_id


def _parse_path(parts: list[str]) -> MediaRef:
    if len(parts) >= 5 and parts[0] == "account":
        # ``/account/xx/yy/rest/<id>[/<att>]``: the unencoded account db spread over four segments.
        parts = ["/".join(parts[:4]), *parts[4:]]
    if not parts:
        raise InvalidMediaName("empty media name")
    if len(parts) == 1:
        return _system_media(parts[0])
    if parts[0] == SYSTEM_MEDIA:
        if len(parts) == 2:
            return _system_media(parts[1])
        if len(parts) == 3:
            # Kazoo reads a 3-segment system path as [Lang, Id], never as [Id, Attachment].
            return _system_prompt(parts[1], parts[2])
        raise InvalidMediaName("system media names have at most three segments")
    if len(parts) > 3:
        raise InvalidMediaName("media names are /<account>/<media_id>[/<attachment>]")
    account_id = _owner(parts[0])
    media_id = parts[1]
    if "/" in media_id:
        raise InvalidMediaName(f"bad media id {media_id!r}")
    return MediaIdRef(account_id, media_id)


def _system_media(media_id: str) -> MediaIdRef | SystemPromptRef:
    if "/" not in media_id:
        return MediaIdRef(None, media_id)
    # ``/system_media/en-us%2Fvm-enter_pass``: a prompt doc id ``<lang>/<prompt_id>`` (kz_media_map paths).
    language, _, prompt_id = media_id.partition("/")
    return _system_prompt(language, prompt_id)


def _system_prompt(language: str, prompt_id: str) -> SystemPromptRef:
    if not language or not prompt_id or "/" in language or "/" in prompt_id:
        raise InvalidMediaName(f"bad system prompt {language!r}/{prompt_id!r}")
    return SystemPromptRef(language.lower(), prompt_id)
