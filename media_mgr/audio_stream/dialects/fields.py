"""Checks for the fields of untrusted frames, shared by both dialects; pure.

Whatever a module sends goes through here before it is used: a field that is of the wrong type, out
of range or not valid text raises ``BadInput`` (the frame is dropped and counted, the existing
limits close the stream with 1007 and refuse its URL), so no frame can make the server fail (a
1011 would not refuse the URL, and voipbit would reconnect for ever). The traps covered: JSON nested
past the interpreter's recursion limit (``RecursionError``, not ``ValueError``), digit strings that
``str.isdigit`` accepts and ``int`` refuses (``"²"``) or refuses for length (over 4,300 digits),
counters far past any real call, and strings with lone surrogates (``"\\ud800"`` is valid JSON but
cannot be encoded as UTF-8, so it would fail later in the database, the log or an event).
"""

from __future__ import annotations

import json
from typing import Final, TypeGuard

from media_mgr.audio_stream.events import BadInput

NOT_JSON: Final = object()
MAX_COUNTER: Final = 2**31 - 1  # the module's counters are C ints; 2**31 chunks of 20 ms is 1.4 years
MAX_TIMESTAMP_DIGITS: Final = 16  # epoch milliseconds have 13
MAX_IDENT: Final = 256  # call and stream ids: a UUID, a name; they end up in the recording's name
MAX_METADATA: Final = 8192  # voipbit's metadata argument is at most 8191 bytes (A0)


def json_object(text: str) -> object:
    """``json.loads``, or ``NOT_JSON`` for anything that is not JSON, nested too deep included."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return NOT_JSON


def ascii_digits(text: str, max_digits: int) -> int | None:
    """The number a string of at most ``max_digits`` ASCII digits spells, else None."""
    if not 0 < len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def counter(value: object, what: str) -> int | None:
    """A 1-based counter (voipbit's ``chunk``): absent is None; anything but 1..2**31-1 is refused."""
    if value is None:
        return None
    if is_int(value) and 1 <= value <= MAX_COUNTER:
        return value
    raise BadInput(f"{what} is not a counter from 1 to {MAX_COUNTER}: {_show(value)}")


def timestamp(value: object) -> int | None:
    """voipbit's ``timestamp``: a string of epoch milliseconds (a number is tolerated); absent is None."""
    if value is None:
        return None
    if isinstance(value, str):
        stamp = ascii_digits(value, MAX_TIMESTAMP_DIGITS)
    else:
        stamp = value if is_int(value) and 0 <= value < 10**MAX_TIMESTAMP_DIGITS else None
    if stamp is None:
        raise BadInput(f"timestamp is not epoch milliseconds: {_show(value)}")
    return stamp


def valid_text(value: str) -> bool:
    """Encodable as UTF-8 (no lone surrogate) and without NUL, which PostgreSQL text refuses."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def text(value: object, what: str, limit: int) -> str | None:
    """An optional free-text field: absent or not a string is None; invalid or too long is refused."""
    if not isinstance(value, str):
        return None
    if len(value) > limit or not valid_text(value):
        raise BadInput(f"{what} is not valid text of at most {limit} characters: {_show(value)}")
    return value


def ident(value: object, what: str) -> str | None:
    """An optional id (call id, stream id): printable, at most ``MAX_IDENT`` characters."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and len(value) <= MAX_IDENT and value.isprintable():
        return value
    raise BadInput(f"{what} is not a printable id of at most {MAX_IDENT} characters: {_show(value)}")


def clean(value: str, limit: int) -> str:
    """Text to log or publish as is: cut to ``limit``, anything not encodable replaced."""
    return value[:limit].encode("utf-8", "replace").decode()


def _show(value: object) -> str:
    """A short, safe picture of a bad value for the log (``repr`` escapes surrogates)."""
    if isinstance(value, str | bytes):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    if is_int(value):
        return repr(value) if abs(value) < 10**40 else "an integer of over 40 digits"
    return type(value).__name__
