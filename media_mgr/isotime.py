"""Times on the wire: ISO 8601 in UTC with a ``Z``, the one form every JSON body and event uses."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def iso_from_epoch(seconds: float) -> str:
    """``2026-11-30T01:02:03Z`` for a ``time.time()`` value (whole seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def iso(moment: datetime | None) -> str | None:
    """A database timestamp as ISO 8601 in UTC; None stays None (a row not ended yet)."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.isoformat()
