"""Every setting of the service, read once from the environment (``MEDIA_MGR_*``).

``Settings`` is built in ``cli.py`` and passed down; nothing else reads ``os.environ``.
Each edge gets its own small config object built from it in ``app.py``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from media_mgr.credentials import Network, parse_networks

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LeadMs = tuple[float, float, float]  # a playout preset: min, max, headroom lead in ms


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIA_MGR_", extra="ignore", validate_default=True)

    # Where things live.
    database_url: str | None = Field(
        default=None, description="PostgreSQL DSN; unset runs an embedded PostgreSQL under data_dir"
    )
    data_dir: Path = Field(default=Path("~/.local/share/media-mgr"), description="embedded database, scratch")
    amqp_url: str | None = Field(default=None, description="AMQP broker URL; unset turns AMQP off")
    embedded_as_root: bool = Field(
        default=False, description="let the embedded PostgreSQL change the system when run as root"
    )

    # Network.
    bind: str = Field(default="127.0.0.1", description="address both servers bind")
    http_port: int = Field(default=24517, ge=0, le=65535)
    shout_port: int = Field(default=8000, ge=0, le=65535)
    audio_stream_port: int | None = Field(
        default=None, ge=0, le=65535,
        description="mod_audio_stream on its own listener (picows: cheapest per frame); issued URLs use it",
    )  # fmt: skip
    public_host: str | None = Field(default=None, description="host written into issued URLs")
    http_max_connections: int = Field(default=8192, ge=1, description="HTTP-port connections, WebSockets too")
    http_max_head_bytes: int = Field(default=16384, ge=1024, le=1048576, description="larger heads: 431")
    timeout_http_head: float = Field(default=15.0, gt=0, description="a request head must arrive in this")
    timeout_http_keep_alive: int = Field(default=5, ge=1, description="idle keep-alive connections close")
    internal_port: int = Field(
        default=0, ge=0, le=65535, description="this instance's own port for the fleet; 0: a free one"
    )
    advertise_host: str | None = Field(
        default=None, description="address other instances reach this one at; default: bind, else hostname"
    )
    fleet_grace_seconds: float = Field(
        default=5.0, ge=1.0, le=300.0, description="a silent instance, lock free, this long is declared gone"
    )
    workers: int = Field(
        default_factory=lambda: len(os.sched_getaffinity(0)), ge=1, le=256,
        description="processes serving the same ports; default: usable cores; 1: one process, no supervisor",
    )  # fmt: skip
    timeout_worker_stop: float = Field(
        default=30.0, gt=0, description="after SIGTERM, workers still running this long are killed"
    )

    # Security.
    admin_token: str | None = Field(default=None, description="Bearer token for /v1/*; unset: loopback only")
    secret: str | None = Field(default=None, description="URL signing key; unset: generated, kept in the db")
    url_ttl: int = Field(default=7200, ge=1, description="seconds an issued stream URL stays valid")

    log_level: LogLevel = "info"

    # AMQP (Kazoo's media API); see amqp/consumer.py for what each layout means.
    amqp_exchange: Literal["kapps", "whapps", "callevt"] = Field(
        default="kapps", description="request exchange: kapps (4.x), whapps (2013-3.22), callevt (older)"
    )
    amqp_queue_layout: Literal["shared", "broadcast"] = Field(
        default="shared", description="shared: one queue, each request answered once; broadcast: Kazoo's"
    )
    amqp_queue_name: str = Field(default="media_mgr.media_req", min_length=1, max_length=200)
    amqp_node: str | None = Field(default=None, description="Node in replies; default media_mgr@<host>")
    amqp_advertise: bool = Field(default=False, description="publish nodes advertise heartbeats as media_mgr")
    amqp_legacy_error_codes: bool = Field(
        default=False, description="Error-Code not_found/no_data (2011/2012)"
    )
    amqp_events_exchange: str = Field(default="media_mgr.events", min_length=1, max_length=200)

    # Limits.
    limit_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1, description="largest upload accepted")
    default_language: str = Field(default="en-us", description="prompt language when none is given")
    limit_list_page: int = Field(default=500, ge=1, description="largest page GET /v1/media returns")

    # Store tuning.
    store_chunk_bytes: int = Field(default=256 * 1024, ge=4096, le=16 * 1024 * 1024)
    store_pool_min: int = Field(default=2, ge=1)
    store_pool_max: int = Field(default=20, ge=1)
    # Playback cache (media.cache): records, names and small contents, kept current by LISTEN/NOTIFY.
    cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0, description="memory the cache may hold; 0: off")
    cache_item_bytes: int = Field(default=1024 * 1024, ge=0, description="larger contents are not kept")
    blob_grace_seconds: int = Field(
        default=900, ge=0, description="how long replaced content stays readable for downloads in flight"
    )

    # Timeouts (seconds).
    timeout_db_command: float = Field(default=30.0, gt=0)
    timeout_db_connect: float = Field(default=10.0, gt=0)
    timeout_probe: float = Field(default=60.0, gt=0, description="ffprobe on an upload")
    timeout_amqp_reply: float = Field(default=1.5, gt=0, le=10, description="answer a media_req within this")
    limit_transcodes: int = Field(default=2, ge=1, description="ffmpeg conversions running at once")

    # SHOUT server (source ingest, live mounts) and recordings; Icecast's defaults where it has one.
    shout_source_password: str | None = Field(
        default=None, description="password any source may use for an ad-hoc mount; unset: issued URLs only"
    )
    shout_url_ttl: int = Field(default=86400, ge=60, description="seconds an issued recording URL is valid")
    shout_queue_bytes: int = Field(default=512 * 1024, ge=16384, description="live queue per mount")
    shout_burst_bytes: int = Field(default=64 * 1024, ge=0, description="sent at once to a new listener")
    shout_max_connections: int = Field(default=4096, ge=1, description="above it: 503 and close")
    shout_max_head_bytes: int = Field(default=8192, ge=1024, le=65536)
    timeout_shout_head: float = Field(default=15.0, gt=0, description="a request head must arrive in this")
    timeout_shout_source: float = Field(default=10.0, gt=0, description="a silent source is ended after this")
    timeout_shout_listener: float = Field(default=30.0, gt=0, description="a listener not reading is dropped")
    limit_relays: int = Field(default=64, ge=1, le=1024, description="relays at once (a thread each)")
    timeout_relay_backoff: float = Field(default=30.0, gt=0, description="longest wait to reconnect a relay")
    limit_recording_seconds: float = Field(default=10800.0, gt=0, description="max_recording_time_limit")
    limit_recording_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    limit_recording_buffer_bytes: int = Field(
        default=1024 * 1024, ge=65536, description="audio held per recording while the database is away"
    )
    # Kazoo's /store/ PUT (media_store_proxy): Basic auth, else the peer address must be allowed.
    store_put_authenticate: bool = Field(default=True, description="proxy_store_authenticate")
    store_put_username: str | None = Field(default=None, description="proxy_username for Basic auth")
    store_put_password: str | None = Field(default=None, description="proxy_password for Basic auth")
    store_put_acls: Annotated[tuple[Network, ...], NoDecode] = Field(
        default_factory=lambda: parse_networks("127.0.0.0/24"),
        description="CIDRs (comma-separated) that may PUT without Basic auth",
    )
    store_put_url_ttl: int = Field(default=86400, ge=60, description="seconds an issued store URL is valid")

    # mod_audio_stream WebSocket (/audio_stream). Playout leads are the seed's presets, in ms.
    ws_url_ttl: int = Field(default=86400, ge=60, description="seconds an issued audio_stream URL is valid")
    ws_gap_threshold_ms: int = Field(default=60, ge=20, le=2000, description="lateness that may be a gap")
    ws_gap_window_ms: int = Field(default=400, ge=100, le=5000, description="time to tell a gap from a stall")
    ws_record_lag_ms: int = Field(
        default=500, ge=100, le=1000, description="audio held before it is recorded"
    )
    limit_ws_message_bytes: int = Field(
        default=256 * 1024, ge=16384, le=16 * 1024 * 1024, description="larger messages: close 1009"
    )
    limit_ws_sessions: int = Field(default=2000, ge=1, description="above it: upgrades answered 503")
    limit_ws_loop_lag_ms: int = Field(default=250, ge=10, description="event loop this late: new streams 503")
    limit_ws_flood_ms: int = Field(
        default=2000, ge=100, description="media may run this far ahead of real time"
    )
    limit_ws_messages_per_second: float = Field(default=50.0, gt=0, description="text/bad frames, sustained")
    limit_ws_bad_frames: int = Field(default=50, ge=1, description="unusable frames before close 1007")
    limit_ws_play_queue: int = Field(default=16, ge=1, description="media items queued per stream")
    timeout_ws_idle: float = Field(default=600.0, gt=0, description="no frame at all this long: close 1001")
    timeout_ws_reconnect: float = Field(default=10.0, gt=0, description="a dropped stream waits this long")
    timeout_ws_send: float = Field(default=5.0, gt=0, description="a send to the module must finish in this")
    timeout_ws_refuse: float = Field(
        default=10.0, ge=0, description="URL refused after a close for bad input"
    )
    timeout_ws_metadata: float = Field(default=1.0, gt=0, description="binary dialect: wait for the rate")
    timeout_ws_ack: float = Field(default=10.0, gt=0, description="playback gives up without playedStream")
    playout_adaptive: bool = Field(
        default=True, description="lead sized from jitter; false: playout_fixed_lead_ms"
    )
    playout_fixed_lead_ms: int = Field(default=100, ge=20, le=5000)
    playout_preset: Literal["auto", "low_latency", "balanced", "high_quality"] = Field(
        default="auto", description="auto: the seed's rules (rate, direction); else this base preset"
    )
    playout_low_latency: Annotated[LeadMs, NoDecode] = Field(
        default=(20, 40, 5), description="min,max,headroom lead in ms"
    )
    playout_balanced: Annotated[LeadMs, NoDecode] = Field(
        default=(40, 80, 10), description="min,max,headroom lead in ms"
    )
    playout_high_quality: Annotated[LeadMs, NoDecode] = Field(
        default=(80, 160, 20), description="min,max,headroom lead in ms"
    )
    playout_jitter_factor: float = Field(
        default=4.0, ge=0, le=20, description="lead = factor * jitter + headroom"
    )
    playout_sync_ms: int = Field(default=1000, ge=0, description="audio between sync checkpoints; 0: none")
    playout_frame_ms: int = Field(default=20, ge=20, le=200, multiple_of=20, description="one media.play")

    # Text to speech (tts:// names); Kazoo's speech.tts_* defaults where it has one.
    tts_engines: str = Field(default="espeak", description="engines on offer, comma-separated; empty: off")
    tts_engine: str = Field(default="espeak", min_length=1, description="engine when a request names none")
    tts_voice: Literal["male", "female"] = Field(default="male", description="voice when none is asked for")
    tts_language: str = Field(
        default="en-us", pattern=r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$", description="language when none is asked"
    )
    tts_cache_seconds: float = Field(default=3600.0, gt=0, description="speech kept this long after last use")
    tts_max_text_chars: int = Field(default=1000, ge=1, le=10000, description="longer texts are refused")
    tts_timeout: float = Field(default=20.0, gt=0, description="one synthesis must finish in this")
    tts_concurrency: int = Field(default=2, ge=1, description="syntheses running at once per instance")
    tts_espeak_backend: Literal["auto", "library", "binary"] = Field(
        default="auto", description="auto: the espeakng-loader wheel, else Debian's espeak-ng binary"
    )

    migrations_dir: Path | None = Field(default=None, description="where the NNN_name.sql files are")

    @field_validator("playout_low_latency", "playout_balanced", "playout_high_quality", mode="before")
    @classmethod
    def _lead_text(cls, value: object) -> object:
        """``"min,max,headroom"`` as the seed writes its presets (the environment's spelling)."""
        if not isinstance(value, str):
            return value
        try:
            low, high, headroom = (float(p) for p in value.split(","))
        except ValueError:
            raise ValueError(f"{value!r} is not min,max,headroom in ms") from None
        return (low, high, headroom)

    @field_validator("playout_low_latency", "playout_balanced", "playout_high_quality")
    @classmethod
    def _lead_range(cls, value: LeadMs) -> LeadMs:
        low, high, headroom = value
        if not 0 < low <= high or headroom < 0:
            raise ValueError(f"{value!r}: need 0 < min <= max and headroom >= 0")
        return value

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("bind")
    @classmethod
    def _bind_is_an_address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if value != "localhost":
                raise ValueError(f"{value!r} is not an IP address to bind") from None
        return value

    @field_validator("store_put_acls", mode="before")
    @classmethod
    def _cidrs(cls, value: object) -> object:
        """Parsed once here: ``store_put.py`` gets networks, never the comma-separated text."""
        return parse_networks(value) if isinstance(value, str) else value

    @field_validator(
        "database_url", "amqp_url", "admin_token", "secret", "public_host", "shout_source_password",
        "store_put_username", "store_put_password", "advertise_host", mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("database_url")
    @classmethod
    def _postgres_dsn(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgres://", "postgresql://")):
            raise ValueError("must be a postgresql:// DSN")
        return value

    @field_validator("amqp_url")
    @classmethod
    def _amqp_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("amqp://", "amqps://")):
            raise ValueError("must be an amqp:// or amqps:// URL")
        return value

    @model_validator(mode="after")
    def _pool_sizes(self) -> Settings:
        if self.store_pool_min > self.store_pool_max:
            raise ValueError("store_pool_min must not exceed store_pool_max")
        if self.shout_burst_bytes > self.shout_queue_bytes:
            raise ValueError("shout_burst_bytes must not exceed shout_queue_bytes")
        offered = [name.strip().lower() for name in self.tts_engines.split(",") if name.strip()]
        if offered and self.tts_engine.lower() not in offered:
            raise ValueError(f"tts_engine {self.tts_engine!r} is not one of tts_engines ({self.tts_engines})")
        return self

    @property
    def url_host(self) -> str:
        """The host written into issued URLs: public_host, else the bind address or host name."""
        if self.public_host:
            return self.public_host
        if self.bind in ("0.0.0.0", "::"):
            return socket.getfqdn()
        return self.bind
