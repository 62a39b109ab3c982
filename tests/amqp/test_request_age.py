"""How old a request is: Kazoo's timestamp property read in every unit and epoch it has been sent in."""

from __future__ import annotations

import datetime
import struct

import pytest
from pamqp import commands, frame, header

from media_mgr.amqp import request_age
from media_mgr.amqp.request_age import UNIX_EPOCH_IN_GREGORIAN, RawTimestamp, published_at, waited

from amqp_peers import kazoo_timestamp

NOW = 1_795_000_000.25  # a moment in 2026, in Unix seconds


@pytest.mark.parametrize(
    ("raw", "who"),
    [
        (int((NOW + UNIX_EPOCH_IN_GREGORIAN) * 1_000_000), "kz_time:now_us(), Kazoo 4.3 and 5.x"),
        (int(NOW * 1_000_000), "Unix microseconds, early Kazoo 4"),
        (int(NOW * 1000), "Unix milliseconds, many clients"),
        (int(NOW), "Unix seconds, the AMQP spec"),
    ],
)
def test_each_unit_and_epoch_reads_as_the_moment_it_was_sent(raw: int, who: str) -> None:
    at = published_at(raw, NOW + 0.5)
    assert at is not None, who
    assert abs(at - NOW) < 1.0, who


@pytest.mark.parametrize("raw", [0, 5, 2**64 - 1, int(NOW - 3 * 86_400)])
def test_a_value_no_unit_puts_near_now_is_no_reading(raw: int) -> None:
    assert published_at(raw, NOW) is None


def _stamp(raw: int) -> RawTimestamp:
    stamp = RawTimestamp.fromtimestamp(0, datetime.UTC)
    stamp.raw = raw
    return stamp


def _kazoo(seconds_ago: float) -> RawTimestamp:
    return _stamp(int((NOW - seconds_ago + UNIX_EPOCH_IN_GREGORIAN) * 1_000_000))


def test_waited_is_the_time_since_kazoo_published() -> None:
    assert waited(_kazoo(1.5), max_age=62, now=NOW) == pytest.approx(1.5, abs=1e-3)


@pytest.mark.parametrize(
    ("stamp", "why"),
    [
        (None, "no timestamp (Kazoo 3.x sent none)"),
        (_kazoo(-5), "five seconds in the future: the clocks disagree"),
        (_kazoo(120), "older than the queue could hold it: the clocks disagree"),
        (_stamp(12345), "no plausible reading"),
    ],
)
def test_an_untrusted_stamp_gives_no_age(stamp: RawTimestamp | None, why: str) -> None:
    assert waited(stamp, max_age=62, now=NOW) is None, why


def test_a_stamp_slightly_ahead_counts_as_just_sent() -> None:
    assert waited(_kazoo(-0.4), max_age=62, now=NOW) == 0.0


def test_the_deadline_is_the_budget_less_what_was_already_waited() -> None:
    assert request_age.deadline(received=100.0, budget=2.0, age=0.5) == 101.5
    assert request_age.deadline(received=100.0, budget=2.0, age=None) == 102.0


def _content_header(stamp: datetime.datetime) -> bytes:
    props = commands.Basic.Properties(content_type="application/json", timestamp=stamp)
    return frame.marshal(header.ContentHeader(0, 10, props), 1)


def test_kazoos_timestamp_decodes_to_its_raw_value_instead_of_failing() -> None:
    """pamqp alone raises "year ... is out of range" here, and aiormq then drops the connection."""
    request_age.install()
    sent = kazoo_timestamp()
    _, _, decoded = frame.unmarshal(_content_header(sent))
    assert isinstance(decoded, header.ContentHeader)
    stamp = decoded.properties.timestamp
    assert isinstance(stamp, RawTimestamp)
    assert stamp.raw == sent.value
    age = waited(stamp, max_age=62)
    assert age is not None
    assert age < 5.0


def test_an_ordinary_seconds_timestamp_still_decodes_to_its_datetime() -> None:
    request_age.install()
    sent = datetime.datetime(2026, 11, 30, 4, 0, 0, tzinfo=datetime.UTC)
    _, _, decoded = frame.unmarshal(_content_header(sent))
    assert isinstance(decoded, header.ContentHeader)
    stamp = decoded.properties.timestamp
    assert stamp == sent
    assert isinstance(stamp, RawTimestamp)
    assert stamp.raw == int(sent.timestamp())


def test_a_truncated_timestamp_is_still_an_error() -> None:
    request_age.install()
    with pytest.raises(ValueError, match="timestamp"):
        request_age._decode_timestamp(struct.pack(">I", 7))
