"""How long a media_req has waited, read from the timestamp Kazoo puts on every message.

``kz_amqp_util:basic_publish/5`` (Kazoo 4.3 and 5.x) sets the AMQP ``timestamp`` property of every
message to ``kz_time:now_us()``: microseconds since year 0 of the Gregorian calendar, where AMQP means
seconds since 1970 (early 4.x sent microseconds since 1970; 3.x sent none). pamqp reads any value above
2**32 as milliseconds and builds a ``datetime`` from it; for Kazoo's value that raises ("year 2028884 is
out of range"), aiormq calls the frame invalid and closes the connection, the broker redelivers the
request, and it happens again: no request from a real ecallmgr would ever be answered. :func:`install`
makes pamqp keep the property's raw 64 bits (:class:`RawTimestamp`), and :func:`published_at` reads them
in whichever unit and epoch puts them nearest to now.

The request's budget (ecallmgr's 2 s ``call_collect`` wait) then runs from that moment:
:func:`deadline` turns it into a point on the event loop's clock. A stamp that cannot be trusted (absent,
unreadable, in the future, or older than anything the queue could still hold) counts the budget from the
moment the delivery reached us instead, which can only make us answer, never refuse wrongly.
"""

from __future__ import annotations

import contextlib
import datetime
import struct
import time
from typing import Final

from pamqp import decode

UNIX_EPOCH_IN_GREGORIAN: Final = 62_167_219_200  # seconds from 0000-01-01 to 1970-01-01 (kz_time)
PLAUSIBLE_SECONDS: Final = 86_400.0  # a reading further than this from now is no reading
_U64: Final = struct.Struct(">Q")
_UNITS: Final = (1, 1_000, 1_000_000)  # seconds (AMQP), milliseconds, microseconds (Kazoo)
_EPOCHS: Final = (0, UNIX_EPOCH_IN_GREGORIAN)
_UNKNOWN: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_PAMQP_READABLE: Final = 253_402_300_799_000  # pamqp reads values above 2**32 as ms: the end of year 9999


class RawTimestamp(datetime.datetime):
    """A timestamp property as it came: ``raw`` is its 64 bits; the datetime is pamqp's own reading
    when it has one, else 1970-01-01 (aio-pika wants a datetime there)."""

    raw: int


def _decode_timestamp(value: bytes) -> tuple[int, datetime.datetime]:
    try:
        (raw,) = _U64.unpack_from(value)
    except struct.error as exc:
        raise ValueError("Could not unpack timestamp value") from exc
    if raw > _PAMQP_READABLE:  # every Kazoo stamp: skip the exception pamqp would raise on it
        stamp = RawTimestamp(1970, 1, 1, tzinfo=datetime.UTC)
    else:
        reading = _UNKNOWN
        with contextlib.suppress(ValueError, OverflowError, OSError):
            _, reading = _PAMQP_TIMESTAMP(value)
        stamp = RawTimestamp.fromtimestamp(reading.timestamp(), datetime.UTC)
    stamp.raw = raw
    return 8, stamp


_PAMQP_TIMESTAMP: Final = decode.timestamp


def install() -> None:
    """Make pamqp decode timestamps (message properties and header tables) with :func:`_decode_timestamp`.

    Process-wide and idempotent: pamqp looks the decoder up in these tables on every frame.
    """
    decode.METHODS["timestamp"] = _decode_timestamp
    decode.TABLE_MAPPING[b"T"] = _decode_timestamp


def published_at(raw: int, now: float) -> float | None:
    """Unix time of a raw timestamp property, in the unit and epoch that put it nearest to ``now``;
    None when no reading is within a day of ``now``."""
    best: float | None = None
    for unit in _UNITS:
        for epoch in _EPOCHS:
            reading = raw / unit - epoch
            if abs(reading - now) <= PLAUSIBLE_SECONDS and (
                best is None or abs(reading - now) < abs(best - now)
            ):
                best = reading
    return best


def waited(stamp: datetime.datetime | None, max_age: float, now: float | None = None) -> float | None:
    """Seconds since the request was published, or None when its stamp cannot be trusted.

    Untrusted: no stamp; no plausible reading; more than a second in the future (clocks disagree); or
    older than ``max_age`` (the queue's message TTL: the broker would have dropped it, so the clocks
    disagree the other way). A stamp up to a second ahead counts as just published.
    """
    if stamp is None:
        return None
    now = time.time() if now is None else now
    raw = stamp.raw if isinstance(stamp, RawTimestamp) else int(stamp.timestamp())
    at = published_at(raw, now)
    if at is None:
        return None
    age = now - at
    if age < -1.0 or age > max_age:
        return None
    return max(age, 0.0)


def deadline(received: float, budget: float, age: float | None) -> float:
    """The loop-clock moment after which an answer would come too late.

    ``received`` is the loop time the delivery reached us; ``age`` what :func:`waited` said then.
    """
    return received + budget - (age or 0.0)
