"""Range and If-Range resolution, case by case against RFC 9110 section 14."""

from __future__ import annotations

import pytest

from media_mgr.errors import RangeNotSatisfiable
from media_mgr.http.ranges import (
    MAX_RANGES,
    ByteRange,
    if_range_allows,
    parse_range,
    select_range,
    unsatisfied_content_range,
)

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-499", ByteRange(0, 499)),
        ("bytes=500-999", ByteRange(500, 999)),
        ("bytes=500-", ByteRange(500, 999)),
        ("bytes=0-", ByteRange(0, 999)),
        ("bytes=-200", ByteRange(800, 999)),
        ("bytes=-5000", ByteRange(0, 999)),  # a suffix longer than the body is the whole body
        ("bytes=900-5000", ByteRange(900, 999)),  # last position clamped to the end
        ("bytes=999-999", ByteRange(999, 999)),
        ("bytes=0-0", ByteRange(0, 0)),
        ("Bytes = 10-19", ByteRange(10, 19)),  # unit is case-insensitive, whitespace tolerated
        ("bytes=0010-0019", ByteRange(10, 19)),
        ("bytes=10-19,", ByteRange(10, 19)),  # empty list elements are allowed
    ],
)
def test_single_ranges(header: str, expected: ByteRange) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99,200-299", ByteRange(0, 299)),  # coalesced into one covering range
        ("bytes=200-299, 0-99", ByteRange(0, 299)),
        ("bytes=0-99,50-150", ByteRange(0, 150)),
        ("bytes=0-9,-10", ByteRange(0, 999)),
        ("bytes=5000-6000,10-20", ByteRange(10, 20)),  # unsatisfiable parts are dropped
    ],
)
def test_several_ranges_become_the_one_range_covering_them(header: str, expected: ByteRange) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes",
        "bytes=",
        "bytes=,",
        "bytes=-",
        "bytes=abc-def",
        "bytes=5-4",  # last before first is invalid, not unsatisfiable
        "bytes=1-2-3",
        "bytes=+1-2",
        "bytes=0x10-20",
        "bytes=١-٢",  # non-ASCII digits
        "items=0-10",  # another unit: ignored
        "bytes 0-10",
        "bytes=" + ",".join(["0-1"] * (MAX_RANGES + 1)),
    ],
)
def test_missing_malformed_or_foreign_headers_serve_the_whole_body(header: str | None) -> None:
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-2000", "bytes=-0", "bytes=5000-,7000-8000"])
def test_unsatisfiable_ranges_raise_416(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, SIZE)
    assert caught.value.status == 416
    assert unsatisfied_content_range(SIZE) == "bytes */1000"


def test_empty_body() -> None:
    assert parse_range("bytes=-10", 0) is None  # a suffix of nothing is the whole (empty) body
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)


def test_huge_numbers_do_not_blow_up() -> None:
    assert parse_range("bytes=0-" + "9" * 5000, SIZE) == ByteRange(0, 999)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=" + "9" * 5000 + "-", SIZE)
    assert parse_range("bytes=-" + "9" * 5000, SIZE) == ByteRange(0, 999)


def test_content_range_and_length() -> None:
    r = ByteRange(10, 19)
    assert r.length == 10
    assert r.content_range(SIZE) == "bytes 10-19/1000"


ETAG = '"abc123"'
DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize(
    ("if_range", "etag", "last_modified", "allowed"),
    [
        (None, ETAG, None, True),
        (ETAG, ETAG, None, True),
        ('"other"', ETAG, None, False),
        ('W/"abc123"', ETAG, None, False),  # weak tags never match strongly
        ('W/"abc123"', 'W/"abc123"', None, False),
        (ETAG, 'W/"abc123"', None, False),
        (ETAG, None, None, False),
        (DATE, ETAG, DATE, True),
        ("Wed, 21 Oct 2015 07:28:01 GMT", ETAG, DATE, False),
        (DATE, ETAG, None, False),
        ("not a date", ETAG, DATE, False),
    ],
)
def test_if_range(if_range: str | None, etag: str | None, last_modified: str | None, allowed: bool) -> None:
    assert if_range_allows(if_range, etag, last_modified) is allowed


def test_select_range_applies_if_range_before_range() -> None:
    assert select_range("bytes=0-9", ETAG, SIZE, ETAG) == ByteRange(0, 9)
    assert select_range("bytes=0-9", '"stale"', SIZE, ETAG) is None
    assert select_range("bytes=5000-", '"stale"', SIZE, ETAG) is None  # stale: full 200, not 416
    with pytest.raises(RangeNotSatisfiable):
        select_range("bytes=5000-", None, SIZE, ETAG)
