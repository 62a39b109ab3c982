"""``Range`` and ``If-Range`` (RFC 9110 section 14) against a representation of known size; pure.

One range is served per response. A header naming several ranges is answered with the smallest
single range covering all the satisfiable ones (RFC 9110 14.2 lets a server coalesce), so players
that ask for ``0-99,200-299`` get one 206 with an honest ``Content-Range``; no multipart bodies.
A malformed or non-``bytes`` header is ignored (full 200), as RFC 9110 allows and players expect;
only a well-formed header with nothing satisfiable is a 416.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from media_mgr.errors import RangeNotSatisfiable

MAX_RANGES = 64
"""More parts than this in one header is treated as abuse and ignored (200)."""

_SPEC = re.compile(r"(\d*)-(\d*)", re.ASCII)


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` to ``end`` of the representation, both included (as in ``Content-Range``)."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        """The ``Content-Range`` value for a 206."""
        return f"bytes {self.start}-{self.end}/{size}"


def unsatisfied_content_range(size: int) -> str:
    """The ``Content-Range`` value that goes with a 416."""
    return f"bytes */{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range to serve, or None for the whole representation (no, malformed or ignored header).

    Raises ``RangeNotSatisfiable`` when the header is valid but no part of it falls inside ``size``.
    """
    if header is None:
        return None
    unit, sep, specs = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    parts = [part.strip() for part in specs.split(",")]
    parts = [part for part in parts if part]  # RFC 9110 list syntax allows empty elements
    if not parts or len(parts) > MAX_RANGES:
        return None
    bounds: list[tuple[int | None, int | None]] = []
    for part in parts:
        match = _SPEC.fullmatch(part)
        if match is None or match.group(1) == match.group(2) == "":
            return None
        first, last = _number(match.group(1)), _number(match.group(2))
        if first is not None and last is not None and last < first:
            return None
        bounds.append((first, last))
    if size == 0 and all(first is None for first, _ in bounds):
        return None  # a suffix of an empty body is the whole (empty) body
    satisfiable = [r for first, last in bounds if (r := _resolve(first, last, size)) is not None]
    if not satisfiable:
        raise RangeNotSatisfiable(f"{header!r} selects nothing of {size} bytes")
    return ByteRange(min(r.start for r in satisfiable), max(r.end for r in satisfiable))


def _number(digits: str) -> int | None:
    """A position, or None if absent; absurdly long numbers saturate instead of costing CPU."""
    if not digits:
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 19 else 10**19


def _resolve(first: int | None, last: int | None, size: int) -> ByteRange | None:
    """One range-spec against ``size``, clamped to the end; None if it is unsatisfiable."""
    if first is None:
        assert last is not None
        return ByteRange(max(size - last, 0), size - 1) if last > 0 and size > 0 else None
    if first >= size:
        return None
    return ByteRange(first, size - 1 if last is None else min(last, size - 1))


def if_range_allows(if_range: str | None, etag: str | None, last_modified: str | None = None) -> bool:
    """Whether ``Range`` may be honoured: no ``If-Range``, or it names the current representation.

    An entity-tag must match ``etag`` strongly (weak tags never do); a date must equal
    ``last_modified`` (the ``Last-Modified`` value we send) exactly. Otherwise serve the full 200.
    """
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith(('"', "W/")):
        return etag is not None and not etag.startswith("W/") and value == etag
    if last_modified is None:
        return False
    try:
        return parsedate_to_datetime(value) == parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False


def select_range(
    range_header: str | None,
    if_range: str | None,
    size: int,
    etag: str | None,
    last_modified: str | None = None,
) -> ByteRange | None:
    """``parse_range`` gated by ``If-Range``: the one call a handler makes."""
    if not if_range_allows(if_range, etag, last_modified):
        return None
    return parse_range(range_header, size)
