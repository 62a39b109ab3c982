"""Every setting of the service, read once from the environment (``MEDIA_MGR_*``).

``Settings`` is built in ``cli.py`` and passed down; nothing else reads ``os.environ``.
Each edge gets its own small config object built from it in ``app.py``.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIA_MGR_", extra="ignore", validate_default=True)

    # Where things live.
    database_url: str | None = Field(
        default=None, description="PostgreSQL DSN; unset runs an embedded PostgreSQL under data_dir"
    )
    data_dir: Path = Field(default=Path("~/.local/share/media-mgr"), description="embedded database, scratch")
    amqp_url: str | None = Field(default=None, description="AMQP broker URL; unset turns AMQP off")

    # Network.
    bind: str = Field(default="127.0.0.1", description="address both servers bind")
    http_port: int = Field(default=24517, ge=0, le=65535)
    shout_port: int = Field(default=8000, ge=0, le=65535)
    public_host: str | None = Field(default=None, description="host written into issued URLs")

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
    blob_grace_seconds: int = Field(
        default=900, ge=0, description="how long replaced content stays readable for downloads in flight"
    )

    # Timeouts (seconds).
    timeout_db_command: float = Field(default=30.0, gt=0)
    timeout_db_connect: float = Field(default=10.0, gt=0)
    timeout_probe: float = Field(default=60.0, gt=0, description="ffprobe on an upload")
    timeout_amqp_reply: float = Field(default=1.5, gt=0, le=10, description="answer a media_req within this")
    limit_transcodes: int = Field(default=2, ge=1, description="ffmpeg conversions running at once")

    migrations_dir: Path | None = Field(default=None, description="where the NNN_name.sql files are")

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

    @field_validator("database_url", "amqp_url", "admin_token", "secret", "public_host", mode="before")
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
        return self

    @property
    def url_host(self) -> str:
        """The host written into issued URLs: public_host, else the bind address or host name."""
        if self.public_host:
            return self.public_host
        if self.bind in ("0.0.0.0", "::"):
            return socket.getfqdn()
        return self.bind
