"""The recorder's limits and deadlines, built once from ``Settings``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from media_mgr.config import Settings


@dataclass(frozen=True)
class RecorderConfig:
    max_seconds: float = 10800.0  # Kazoo's max_recording_time_limit
    max_bytes: int = 512 * 1024 * 1024
    buffer_bytes: int = 1024 * 1024  # held in memory while the database is slow or away
    flush_bytes: int = 64 * 1024  # a write this far ahead commits at once, not on the next tick
    flush_seconds: float = 1.0  # audio is in the database at most this long after it arrived
    store_timeout: float = 60.0  # the database may fail this long before a recording gives up
    recovery_grace: float = 5.0  # a silent owner this long without its lock is presumed dead
    stop_timeout: float = 10.0  # on exit, open recordings get this long to commit and close

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            max_seconds=settings.limit_recording_seconds,
            max_bytes=settings.limit_recording_bytes,
            buffer_bytes=settings.limit_recording_buffer_bytes,
            recovery_grace=settings.fleet_grace_seconds,
        )
