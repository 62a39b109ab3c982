"""What a TTS request asks for, checked and put in Kazoo's normal form; pure.

Kazoo's rules (reference 2.6, ``kz_media_tts_cache``): voice ``male`` or ``female`` (default
``male``), language ``en-us`` by default, a two-letter language ``xx`` read as ``xx-xx`` and ``en``
as ``en-us``. The text is what ecallmgr sends: the ``Text`` key when the request has one (4.x puts a
hash in the name), else the raw remainder of ``tts://<text>`` (older ecallmgr puts the text there,
unencoded, so it is not percent-decoded here). A 4.x hash without ``Text`` is refused, not spelled out.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

from media_mgr.errors import InvalidRequest

VOICES: Final = ("male", "female")
# C0 and C1 controls and DEL: nothing a speech engine should be handed (escape sequences, NUL).
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LANGUAGE: Final = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})*")
_ENGINE: Final = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,63}")
_MD5: Final = re.compile(r"[0-9a-f]{32}")  # 4.x ecallmgr: tts://md5(Text/Voice/Language)


@dataclass(frozen=True)
class TtsOptions:
    """The TTS keys of a request (media_req ``Text``, ``Voice``, ``Language``, ``Engine``), as sent."""

    text: str | None = None
    voice: str | None = None
    language: str | None = None
    engine: str | None = None


@dataclass(frozen=True)
class Speech:
    """One thing to say, checked and normalised: what an engine gets and what the cache is keyed by."""

    engine: str
    voice: str
    language: str
    text: str

    @property
    def key(self) -> str:
        """The cache key: a hash of (engine, voice, language, text); NUL cannot occur inside them."""
        material = "\x00".join((self.engine, self.voice, self.language, self.text))
        return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True)
class SpeechDefaults:
    engine: str
    voice: str
    language: str
    max_text_chars: int


def kazoo_language(language: str) -> str:
    """``en`` -> ``en-us``, ``xx`` -> ``xx-xx``, anything else lower-cased (``kz_media_tts_cache``)."""
    lang = language.strip().lower().replace("_", "-")
    if lang == "en":
        return "en-us"
    if len(lang) == 2:
        return f"{lang}-{lang}"
    return lang


def speech_for(name_text: str, options: TtsOptions | None, defaults: SpeechDefaults) -> Speech:
    """Check a request; raises ``InvalidRequest`` saying what is wrong. The engine is not looked up here."""
    opts = options or TtsOptions()
    if opts.text is None and _MD5.fullmatch(name_text):
        raise InvalidRequest("tts://<32 hex> is Kazoo's hash of the words: send them in Text")
    text = (opts.text if opts.text is not None else name_text).strip()
    if not text:
        raise InvalidRequest("tts text is empty")
    if len(text) > defaults.max_text_chars:
        limit = defaults.max_text_chars
        raise InvalidRequest(f"tts text is {len(text)} characters; at most {limit} are spoken")
    if _CONTROL.search(text):
        raise InvalidRequest("tts text contains control characters")
    voice = (opts.voice or defaults.voice).strip().lower()
    if voice not in VOICES:
        raise InvalidRequest(f"tts voice {opts.voice!r} is neither male nor female")
    language = kazoo_language(opts.language or defaults.language)
    if not _LANGUAGE.fullmatch(language):
        raise InvalidRequest(f"tts language {opts.language!r} is not a language tag such as en-us or fr")
    engine = (opts.engine or defaults.engine).strip().lower()
    if not _ENGINE.fullmatch(engine):
        raise InvalidRequest(f"tts engine name {opts.engine!r} is not a name")
    return Speech(engine=engine, voice=voice, language=language, text=text)
