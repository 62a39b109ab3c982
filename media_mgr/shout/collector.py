"""The SHOUT side's gauges and counters for /metrics, read from the live objects when scraped.

``ShoutServer`` registers it on entry and unregisters it on exit.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from media_mgr.recording.recorder import Recorder
from media_mgr.shout.host import ShoutHost


class Observed(ShoutHost, Protocol):
    """What is counted: the server's state (``server.ServerState``)."""

    @property
    def connections(self) -> Sized: ...

    @property
    def sources(self) -> Sized: ...

    @property
    def recorder(self) -> Recorder: ...


class ShoutCollector:
    def __init__(self, state: Observed) -> None:
        self.state = state

    def collect(self) -> list[Metric]:
        st = self.state
        mounts = st.registry.mounts()
        gauges = {
            "media_mgr_shout_connections": ("open SHOUT-port connections", len(st.connections)),
            "media_mgr_shout_sources": ("sources streaming now", len(st.sources)),
            "media_mgr_shout_listeners": ("live-mount listeners now", sum(m.listeners for m in mounts)),
            "media_mgr_shout_queue_bytes": (
                "audio queued in live mounts",
                sum(m.queued_bytes for m in mounts),
            ),
            "media_mgr_recording_buffer_bytes": (
                "recorded audio accepted, not yet committed to PostgreSQL",
                sum(i.buffered for i in st.recorder.live()),
            ),
        }
        found: list[Metric] = [GaugeMetricFamily(name, doc, value=v) for name, (doc, v) in gauges.items()]
        found.append(CounterMetricFamily("media_mgr_shout_listeners_dropped",
                                         "listeners dropped: too slow for the queue, or not reading",
                                         value=st.stats["listeners_dropped"]))  # fmt: skip
        found.append(CounterMetricFamily("media_mgr_shout_sources_ended", "sources that ended",
                                         value=st.stats["sources_total"]))  # fmt: skip
        return found

    def describe(self) -> list[Metric]:
        return []
