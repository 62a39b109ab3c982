"""Recording events on the service's AMQP events exchange: ``recording.complete`` when a source ends
(``recording.interrupted`` from crash recovery is checked in tests/recording/test_ingest.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shout_peers import ShoutUrl, create_recording, push_and_wait, start_shout_server

from event_listener import event_listener
from sounds import raw_mp3


async def test_recording_complete_is_published_with_the_recording(database_url: str, tmp_path: Path) -> None:
    async with event_listener("recording.#") as events:
        srv, _ = start_shout_server(database_url, tmp_path / "srv", **events.env)
        try:
            sent = raw_mp3(tmp_path / "e.mp3", seconds=1.0)
            rec = create_recording(srv)
            await asyncio.sleep(1.0)  # let the consumer connect and declare its exchanges
            await asyncio.to_thread(
                push_and_wait, ShoutUrl.parse(rec["shout_url"]), tmp_path / "e.mp3", pace=False
            )
            key, body = await events.next()
            assert key == "recording.complete"
            assert (body["Event-Category"], body["Event-Name"]) == ("recording", "complete")
            assert body["Recording-ID"] == rec["id"] and body["Media-ID"] == rec["id"]
            assert body["Size"] == len(sent) and body["End-Reason"] == "eof" and body["Duration-MS"] > 0
        finally:
            srv.stop()
