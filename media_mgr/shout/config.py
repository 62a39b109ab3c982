"""The SHOUT server's settings, read once from ``Settings`` (Icecast's defaults where it has one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from media_mgr.config import Settings


@dataclass(frozen=True)
class ShoutConfig:
    head_timeout: float = 15.0  # Icecast header-timeout
    source_timeout: float = 10.0  # Icecast source-timeout
    listener_timeout: float = 30.0  # Icecast client-timeout: a listener that stopped reading
    max_head_bytes: int = 8192
    max_connections: int = 4096
    source_buffer_bytes: int = 64 * 1024  # body bytes waiting before reading pauses
    stop_timeout: float = 10.0  # on exit: sources get this long to close their recordings

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            head_timeout=settings.timeout_shout_head,
            source_timeout=settings.timeout_shout_source,
            listener_timeout=settings.timeout_shout_listener,
            max_head_bytes=settings.shout_max_head_bytes,
            max_connections=settings.shout_max_connections,
        )
