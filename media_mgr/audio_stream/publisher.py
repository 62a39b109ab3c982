"""Stream events (started, checkpoint, cleared, stopped...): counted, logged, published on AMQP.

Each event is logged once as ``audio_stream <name>`` and, when AMQP is on, published as
``audio_stream.<name>`` in Kazoo's envelope spelling (``Session-ID``, ``Late-MS``...). Publishing
never makes a stream wait: each event goes in a task of its own with a deadline, at most
``EVENTS_IN_FLIGHT`` at once (more are dropped and counted); ``close`` lets those in flight finish
(the ``stopped`` events of a shutdown) before it stops the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from media_mgr.audio_stream.session import Session
from media_mgr.metrics import Metrics
from media_mgr.tasks import TaskLimitReached, TaskSet

log = logging.getLogger("media_mgr.audio_stream")

Publish = Callable[[str, Mapping[str, Any]], Awaitable[object]]
EVENT_TIMEOUT = 5.0
EVENTS_IN_FLIGHT = 1000  # events beyond this many unpublished are dropped and counted


class StreamEvents:
    def __init__(self, metrics: Metrics, publish: Publish | None) -> None:
        self.metrics = metrics
        self.publish = publish  # None: AMQP is off, events are only logged
        self._tasks = TaskSet("audio_stream.events", log, limit=EVENTS_IN_FLIGHT)
        self._unpublished: set[asyncio.Task[None]] = set()

    def emit(self, session: Session, name: str, fields: dict[str, Any]) -> None:
        """Count, log and publish a stream event; publishing never waits on the broker nor queues."""
        self.metrics.audio_stream_events.labels(name).inc()
        log.info(
            f"audio_stream {name}",
            extra={
                "session": session.id,
                "stream_id": session.stream_id,
                **{k: v for k, v in fields.items() if k != "payload"},
            },
        )
        if self.publish is None:
            return
        try:
            task = self._tasks.spawn(self._send(f"audio_stream.{name}", envelope(session, name, fields)))
        except (TaskLimitReached, RuntimeError):  # too many in flight, or closed
            self.metrics.audio_stream_events_dropped.inc()
            return
        self._unpublished.add(task)
        task.add_done_callback(self._unpublished.discard)

    async def close(self) -> None:
        """Let the events in flight go out (within ``EVENT_TIMEOUT``), then stop what is left."""
        if self._unpublished:
            await asyncio.wait(list(self._unpublished), timeout=EVENT_TIMEOUT)
        await self._tasks.stop()

    async def _send(self, routing_key: str, body: dict[str, Any]) -> None:
        assert self.publish is not None
        try:
            async with asyncio.timeout(EVENT_TIMEOUT):
                await self.publish(routing_key, body)
        except Exception as exc:  # an event never breaks the stream it describes
            log.warning(
                "audio_stream event not published", extra={"routing_key": routing_key, "error": repr(exc)}
            )


def envelope(session: Session, name: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The event's body: who it is about, what the event adds, then ``fields``."""
    body: dict[str, Any] = {
        "Event-Category": "audio_stream",
        "Event-Name": name,
        "Session-ID": session.id,
        "Stream-ID": session.stream_id,
        "Call-ID": session.call_id,
        "Recording-ID": session.sink.id if session.sink else None,
        "Dialect": session.dialect.name,
    }
    if name == "started" and session.fmt is not None:
        body.update(
            {
                "Encoding": session.fmt.encoding,
                "Sample-Rate": session.fmt.rate,
                "Tracks": list(session.fmt.tracks),
            }
        )
    if name == "stopped":
        body["Duration-MS"] = session.recorded_ms
    body.update({_header(k): v for k, v in fields.items()})
    return body


def _header(key: str) -> str:
    """``late_ms`` -> ``Late-MS``: the Kazoo envelope's spelling."""
    return "-".join(p.upper() if p in ("ms", "id") else p.capitalize() for p in key.split("_"))
