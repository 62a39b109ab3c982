"""The service's own events (recording finished, audio stream started, checkpoint played, ...).

Producers (recorder, SHOUT server, audio_stream) are given one :class:`EventPublisher`; they never
know whether AMQP is on. The AMQP consumer publishes on its events exchange; :class:`NoEvents`
stands in when AMQP is off. Publishing is best effort and never queues: an event must not hold up
the work it describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class EventPublisher(Protocol):
    async def publish(self, routing_key: str, body: Mapping[str, Any]) -> bool:
        """Send one event; True once the broker confirmed it, False (logged) when it could not."""
        ...


class NoEvents:
    """The publisher when AMQP is off: every event is dropped, quietly."""

    async def publish(self, routing_key: str, body: Mapping[str, Any]) -> bool:
        return False
