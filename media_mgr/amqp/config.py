"""The AMQP edge's configuration: Kazoo's exchanges and keys by era, queue layouts, deadlines.

:meth:`AmqpConfig.from_settings` is the one place ``MEDIA_MGR_AMQP_*`` settings become it; AMQP is
off (None) when no broker URL is configured.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from typing import Final, Literal, Self

from yarl import URL

from media_mgr.config import Settings

QueueLayout = Literal["shared", "broadcast"]
# What the AMQP client library accepts in exchange and queue names (Kazoo's <0.123.0> would not pass).
_NAME_CHARS: Final = re.compile(r"[a-zA-Z0-9\-_.:@#,/+ ]{1,255}")
# The request routing key on each of Kazoo's request exchanges, by era (reference 1.1).
ROUTING_KEYS: Final = {"kapps": "media_req", "whapps": "media_req", "callevt": "call.media"}


def default_node() -> str:
    return f"media_mgr@{socket.gethostname()}"


@dataclass(frozen=True)
class AmqpConfig:
    """Everything the AMQP edge needs; :meth:`from_settings` builds it from ``Settings``.

    Legacy request exchanges: ``whapps`` with key ``media_req`` (2013 to 3.22), ``callevt`` with key
    ``call.media`` (before). Queue layouts (checklist 24): ``shared`` is one named queue for all instances
    (competing consumers: each request answered once); ``broadcast`` is Kazoo's own, an auto-delete
    queue per instance, so every instance answers and ecallmgr takes the first URL. Both queues are
    bounded like Kazoo's (``x-max-length``, ``x-message-ttl``) and non-exclusive, as Kazoo's are (2.1): after
    a network blip the broker may still hold our old connection, and an exclusive queue or consumer
    would then refuse the re-declaration until that connection times out.
    """

    url: str
    exchange: str = "kapps"
    routing_key: str = "media_req"
    reply_exchange: str = "targeted"
    queue_layout: QueueLayout = "shared"
    queue_name: str = "media_mgr.media_req"
    queue_max_length: int = 100
    queue_message_ttl_ms: int = 60_000
    # Deliveries held unacknowledged: enough to keep the broker's ready list (capped at queue_max_length,
    # the head dropped beyond it) short at thousands of requests/s while replies await their confirms.
    prefetch: int = 1000
    concurrency: int = 64  # requests resolved at once; the rest of the prefetch waits its turn, in order
    budget: float = 2.0  # ecallmgr's call_collect wait: a request older than this is not answered
    node: str = field(default_factory=default_node)
    legacy_error_codes: bool = False
    advertise: bool = False
    advertise_interval: float = 10.0
    events_exchange: str = "media_mgr.events"
    timeout_connect: float = 5.0
    timeout_reply: float = 1.5
    timeout_publish: float = 5.0
    timeout_stop: float = 5.0
    reconnect_interval: float = 2.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0

    def __post_init__(self) -> None:
        if self.queue_layout not in ("shared", "broadcast"):
            raise ValueError(f"queue_layout must be shared or broadcast, not {self.queue_layout!r}")
        if self.prefetch < 1 or self.concurrency < 1:
            raise ValueError("prefetch and concurrency must be at least 1")
        if self.budget <= 0:
            raise ValueError("budget must be positive")
        for name in (self.exchange, self.reply_exchange, self.events_exchange, self.queue_name):
            if not _NAME_CHARS.fullmatch(name):
                raise ValueError(f"{name!r} is not a usable exchange or queue name")

    @classmethod
    def from_settings(cls, settings: Settings) -> Self | None:
        """The edge's config, or None when ``MEDIA_MGR_AMQP_URL`` is unset (AMQP off)."""
        if settings.amqp_url is None:
            return None
        return cls(
            url=settings.amqp_url,
            exchange=settings.amqp_exchange,
            routing_key=ROUTING_KEYS[settings.amqp_exchange],
            queue_layout=settings.amqp_queue_layout,
            queue_name=settings.amqp_queue_name,
            legacy_error_codes=settings.amqp_legacy_error_codes,
            advertise=settings.amqp_advertise,
            events_exchange=settings.amqp_events_exchange,
            timeout_reply=settings.timeout_amqp_reply,
            node=settings.amqp_node or default_node(),
        )

    @property
    def safe_url(self) -> str:
        """The broker URL without its password, for logs."""
        url = URL(self.url)
        return str(url.with_password("******")) if url.password else str(url)
