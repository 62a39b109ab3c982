"""Stream events on the service's AMQP events exchange, from a real session: started, checkpoint
played, cleared, stopped (the issue's list), each carrying the session and the stream ids."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from audio_stream_checks import LOOP_LAG_TOLERATED, session_of, ws_base
from audio_stream_client import Talk, VoipbitModule

from event_listener import event_listener
from servers import start_server
from sounds import tone

pytestmark = pytest.mark.timeout(120)


async def test_stream_events_are_published(database_url: str, tmp_path: Path, account_id: str) -> None:
    run = secrets.token_hex(4)
    async with event_listener("audio_stream.#") as events:
        srv = start_server({"MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(tmp_path / "d"),
                            **events.env, **LOOP_LAG_TOLERATED}, tmp_path / "log")  # fmt: skip
        try:
            async with httpx.AsyncClient(base_url=srv.url, timeout=30) as http:
                while (await http.get("/readyz")).status_code != 200:  # the broker side is up
                    await asyncio.sleep(0.1)
                with tone(tmp_path / "p.wav", seconds=0.5).open("rb") as f:
                    media = (await http.post("/v1/media", files={"file": ("p.wav", f)},
                                             data={"account_id": account_id})).json()  # fmt: skip
                module = VoipbitModule(ws_base(srv), {"inbound": np.zeros(8000 * 10, dtype=np.int16)},
                                       stream_id=f"ev-{run}", bidirectional=True)  # fmt: skip
                await module.start()
                talking = asyncio.create_task(module.run(Talk(2.5)))
                await session_of(srv, f"ev-{run}")
                r = await http.post(
                    f"/v1/streams/ev-{run}/play", json={"media_id": media["id"], "checkpoint": "hi"}
                )
                assert r.status_code == 202, r.text
                await asyncio.sleep(1.2)  # the 0.5 s prompt has played and been acknowledged
                assert (await http.post(f"/v1/streams/ev-{run}/clear")).status_code == 200
                await talking
                await module.graceful()

            seen: list[tuple[str, dict[str, Any]]] = []
            while not any(key == "audio_stream.stopped" for key, _ in seen):
                seen.append(await events.next(timeout=15))
            keys = [key for key, _ in seen]
            assert keys[0] == "audio_stream.started"
            assert keys[-1] == "audio_stream.stopped"
            assert "audio_stream.cleared" in keys
            checkpoints = [body for key, body in seen if key == "audio_stream.checkpoint"]
            assert [c["Checkpoint"] for c in checkpoints if c["Checkpoint"] == "hi"] == ["hi"]
            for _, body in seen:
                assert body["Event-Category"] == "audio_stream"
                assert body["Stream-ID"] == f"ev-{run}"
                assert None not in body.values()
            started = seen[0][1]
            assert (started["Sample-Rate"], started["Encoding"]) == (8000, "l16")
        finally:
            srv.stop()
