"""Every Prometheus metric of the service, defined once, in one registry per process.

Label values come from small fixed sets (routes, outcomes, dialects, reasons), never from ids: the
number of series stays the same however many sessions, recordings or mounts come and go.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

AMQP_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "media_mgr_http_requests", "HTTP requests answered", ["route", "status"], registry=r
        )
        self.http_seconds = Histogram(
            "media_mgr_http_request_seconds", "time to the end of the response", ["route"], registry=r
        )
        self.uploads = Counter("media_mgr_uploads", "media uploads by outcome", ["outcome"], registry=r)
        self.upload_bytes = Counter("media_mgr_upload_bytes", "bytes of media stored", registry=r)
        self.served_bytes = Counter("media_mgr_served_bytes", "bytes of media served", ["kind"], registry=r)
        # mod_audio_stream WebSocket (audio_stream/): per-session gauges are read when scraped.
        self.audio_stream_connections = Counter(
            "media_mgr_audio_stream_connections", "WebSocket upgrades by outcome", ["outcome"], registry=r
        )
        self.audio_stream_sessions = Gauge(
            "media_mgr_audio_stream_sessions", "live audio streams", registry=r
        )
        self.audio_stream_loop_lag_ms = Gauge(
            "media_mgr_audio_stream_loop_lag_ms", "how late the event loop runs (recent peak)", registry=r
        )
        self.audio_stream_frames = Counter(
            "media_mgr_audio_stream_frames", "frames received", ["dialect", "kind"], registry=r
        )
        self.audio_stream_closes = Counter(
            "media_mgr_audio_stream_closes", "connections ended, by why", ["reason"], registry=r
        )
        self.audio_stream_events = Counter(
            "media_mgr_audio_stream_events",
            "stream events (started, stopped, checkpoint...)",
            ["event"],
            registry=r,
        )
        self.audio_stream_events_dropped = Counter(
            "media_mgr_audio_stream_events_dropped", "events not published: too many in flight", registry=r
        )
        # Aggregates over the live sessions, computed when scraped: no label names a session (one
        # series per session would grow with traffic); ``GET /v1/streams/{id}`` has the per-session figures.
        self.audio_stream_jitter_ms = Gauge(
            "media_mgr_audio_stream_jitter_ms",
            "RFC 3550 interarrival jitter, the worst of the live sessions",
            registry=r,
        )
        self.audio_stream_lead_ms = Gauge(
            "media_mgr_audio_stream_lead_ms",
            "playout lead kept at the module, the largest of the live sessions",
            registry=r,
        )
        self.audio_stream_underruns = Gauge(
            "media_mgr_audio_stream_underruns",
            "playout underruns seen or inferred, summed over the live sessions",
            registry=r,
        )
        # AMQP media_req (amqp/consumer.py): a request past ecallmgr's 2 s budget is not answered.
        # Where a media_req's time goes: in the broker before we took it (from its publisher's
        # timestamp; only requests whose stamp is trusted, see amqp/request_age.py) and with us until
        # the broker confirmed our reply. ecallmgr waits for the sum.
        self.amqp_request_wait_seconds = Histogram(
            "media_mgr_amqp_request_wait_seconds",
            "media_req: from its publisher's timestamp to media-mgr taking it (the broker and the wire)",
            buckets=AMQP_BUCKETS,
            registry=r,
        )
        self.amqp_reply_seconds = Histogram(
            "media_mgr_amqp_reply_seconds",
            "media_req: from media-mgr taking it to the broker confirming the reply",
            buckets=AMQP_BUCKETS,
            registry=r,
        )
        self.amqp_requests_late = Counter(
            "media_mgr_amqp_requests_late",
            "media_req not answered: past ecallmgr's wait on arrival (queued) or once resolved (resolving)",
            ["stage"],
            registry=r,
        )
