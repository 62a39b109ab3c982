"""Every Prometheus metric of the service, defined once, in one registry per process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


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
