"""The player's task against its own failures: what stops playback is reported as what it is, and
stopping the task never eats a cancellation meant for the caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from media_mgr.audio_stream.player import Player, PlayItem, PlayStyle
from media_mgr.audio_stream.playout import Pacer


class Module:
    """What the player sends to, and what it reports."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def send(self, text: str) -> None:
        self.sent.append(text)

    def notify(self, name: str, fields: dict[str, Any]) -> None:
        self.events.append((name, fields))


def player(module: Module, style: PlayStyle = PlayStyle.VOIPBIT) -> Player:
    return Player(style, 8000, Pacer(0.02), lambda: 0.02, module.notify,
                  limit_queue=4, send_timeout=1.0, ack_timeout=5.0)  # fmt: skip


async def store_times_out() -> AsyncIterator[bytes]:
    """An item whose second read from the database hits asyncpg's command timeout."""
    yield bytes(320)
    raise TimeoutError  # what asyncpg raises when a command outlives command_timeout


async def endless() -> AsyncIterator[bytes]:
    while True:
        yield bytes(320)


async def test_a_store_timeout_while_reading_is_reported_as_the_store_not_the_module() -> None:
    module = Module()
    p = player(module)
    p.attach(module.send)
    p.enqueue(PlayItem("i1", "m1", None, store_times_out(), 1000))
    await p.join()
    assert ("play_failed", {"reason": "store_unavailable"}) in module.events
    assert ("play_failed", {"reason": "no_acknowledgement"}) not in module.events
    assert len(module.sent) == 1  # the frame read before the failure went out


async def test_clearing_does_not_swallow_a_cancellation_of_the_caller() -> None:
    module = Module()
    p = player(module)  # not attached: the task waits for a socket, mid-item
    p.enqueue(PlayItem("i1", "m1", "cp", endless(), 1000))
    await asyncio.sleep(0)  # the task starts and waits
    caller = asyncio.create_task(p.clear())
    await asyncio.sleep(0)  # clear() cancels the task and awaits it
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_clearing_by_itself_returns_the_cancelled_checkpoints() -> None:
    module = Module()
    p = player(module)
    p.enqueue(PlayItem("i1", "m1", "cp", endless(), 1000))
    await asyncio.sleep(0)
    assert await p.clear() == ["cp"]
