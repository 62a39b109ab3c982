"""No credential reaches a log line: every line is passed through :func:`redact` as it is written.

Credentials travel inside URLs here, so they show up wherever a URL is logged: uvicorn's own
WebSocket line (``/audio_stream?token=...``), access lines (``/single/<token>/...``,
``/store/<token>/...``), issued URLs in ``media_req answered``, ``shout://id:<token>@...``.
Rather than trusting every call site, the log formatter redacts the finished JSON line (so no
pattern may eat a backslash of an escaped quote): URL userinfo
passwords, the token segment of token paths, ``token=``/``password=`` query values, the value of
``Authorization`` schemes, and any secret the service registered (admin token, passwords, the URL
signing key) wherever it appears, even in a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

MASK = "***"
_MIN_SECRET = 4  # shorter values would mask ordinary words

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host -> scheme://user:***@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s/:@\"'\\]*:)[^\s@/\"'\\]+@", re.IGNORECASE), rf"\g<1>{MASK}@"),
    # /single/<token>/, /continuous/<token>/, /store/<token>/ (playback and store tokens), but not
    # a source file of the media_mgr/store/ package named in a traceback
    (re.compile(r"(/(?:single|continuous|store)/)(?![A-Za-z0-9_]+\.py\b)[^/\s\"'?#\\]+"), rf"\g<1>{MASK}"),
    # ?token=... &password=... &secret=... (audio_stream URLs, anything else)
    (re.compile(r"([?&;](?:token|password|pass|secret|key)=)[^&\s\"'#\\]+", re.IGNORECASE), rf"\g<1>{MASK}"),
    # Authorization: Bearer xxx / Basic xxx (a header echoed in a message)
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\g<1> {MASK}"),
)


class Redactor:
    """The patterns above plus the exact secrets this process knows."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        self._exact: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        """Register secrets to mask wherever they appear (None and very short values are ignored)."""
        for secret in secrets:
            if secret and len(secret) >= _MIN_SECRET:
                self._secrets.add(secret)
                self._secrets.add(json.dumps(secret)[1:-1])  # as it stands inside a JSON line
        if self._secrets:
            alternatives = sorted(self._secrets, key=len, reverse=True)  # longest first
            self._exact = re.compile("|".join(re.escape(s) for s in alternatives))

    def __call__(self, text: str) -> str:
        if self._exact is not None:
            text = self._exact.sub(MASK, text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


redact = Redactor()
"""The process-wide redactor the log formatter applies; the service adds its secrets at start."""
