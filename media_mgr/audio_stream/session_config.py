"""A session's settings (from ``Settings``) and its counters: apart from ``session.py``, which they
would push past the size of a module."""

from __future__ import annotations

from dataclasses import dataclass, field

from media_mgr.audio_stream.playout.buffering import BufferPolicy
from media_mgr.config import Settings


@dataclass(frozen=True)
class SessionConfig:
    gap_threshold: float = 0.06
    gap_window: float = 0.4
    max_hold: float = 2.0
    record_lag: float = 0.5
    flood_allowance: float = 2.0
    messages_per_second: float = 50.0
    bad_frames: int = 50
    metadata_timeout: float = 1.0
    policy: BufferPolicy = field(default_factory=BufferPolicy)

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionConfig:
        return cls(
            gap_threshold=settings.ws_gap_threshold_ms / 1000, gap_window=settings.ws_gap_window_ms / 1000,
            record_lag=settings.ws_record_lag_ms / 1000, flood_allowance=settings.limit_ws_flood_ms / 1000,
            messages_per_second=settings.limit_ws_messages_per_second,
            bad_frames=settings.limit_ws_bad_frames, metadata_timeout=settings.timeout_ws_metadata,
            policy=BufferPolicy.from_settings(settings),
        )  # fmt: skip


@dataclass(slots=True)
class Stats:
    chunks: int = 0
    bytes_in: int = 0
    bad_frames: int = 0
    odd_sizes: int = 0
    texts: int = 0
    reconnects: int = 0
