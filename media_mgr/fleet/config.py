"""How the fleet keeps time and where this instance says it can be reached."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Self

from media_mgr.config import Settings


@dataclass(frozen=True)
class FleetConfig:
    grace_seconds: float = 5.0  # a silent instance this long, its owner lock free, is declared gone
    beat_seconds: float = 1.0
    listed_after_end_seconds: float = 3600.0  # ended instances stay listed (and in the table) this long
    forward_timeout: float = 10.0  # a forwarded control request gets this long
    worker: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, worker: int | None = None) -> Self:
        return cls(grace_seconds=settings.fleet_grace_seconds, worker=worker)


def advertised_host(settings: Settings) -> str:
    """The address other instances use for this one: ``MEDIA_MGR_ADVERTISE_HOST``, else the bound
    address, else (bound to every address) this machine's name."""
    if settings.advertise_host:
        return settings.advertise_host
    if settings.bind not in ("0.0.0.0", "::"):
        return settings.bind
    return socket.gethostname()
