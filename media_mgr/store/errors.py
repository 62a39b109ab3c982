"""What the store tells its callers when the database itself fails: one typed error.

Callers above the store never see a driver class: a database that is slow, away or restarting
surfaces as :class:`StoreUnavailable` (chained to the driver's error), which every edge already
answers as ``unavailable`` (HTTP 503 with Retry-After, WebSocket 1011, AMQP ``media_error``).
Anything else the driver raises (a constraint, a bad statement) is a bug or a conflict.
"""

from __future__ import annotations

from media_mgr.errors import Unavailable


class StoreUnavailable(Unavailable):
    """The database is slow, away or restarting: worth a retry."""
