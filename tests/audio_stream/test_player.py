"""The player's task against its own failures: what stops playback is reported as what it is, and
stopping the task never eats a cancellation meant for the caller."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from media_mgr.audio_stream.dialects.base import PlayEncoder
from media_mgr.audio_stream.dialects.binary import AmignitersPlay, ForkPlay
from media_mgr.audio_stream.dialects.voipbit import VoipbitPlay
from media_mgr.audio_stream.playout.pacer import Pacer
from media_mgr.audio_stream.playout.player import Player, PlayItem
from media_mgr.store.errors import StoreUnavailable
from media_mgr.tasks import TaskSet

log = logging.getLogger("test_player")


class Module:
    """What the player sends to, and what it reports."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def send(self, text: str) -> None:
        self.sent.append(text)

    def notify(self, name: str, fields: dict[str, Any]) -> None:
        self.events.append((name, fields))


@pytest.fixture(params=[VoipbitPlay, AmignitersPlay, ForkPlay])
def encoder(request: pytest.FixtureRequest) -> PlayEncoder:
    """Every dialect's playback, as uvicorn runs each test against every protocol class."""
    cls: type[PlayEncoder] = request.param
    return cls()


def player(module: Module, encoder: PlayEncoder) -> Player:
    return Player(encoder, 8000, Pacer(0.02), lambda: 0.02, module.notify, tasks=TaskSet("test", log),
                  limit_queue=4, send_timeout=1.0, ack_timeout=5.0)  # fmt: skip


async def store_times_out() -> AsyncIterator[bytes]:
    """An item whose second read from the database hits asyncpg's command timeout, which the store
    raises as ``StoreUnavailable`` (``store/pool.py``)."""
    yield bytes(320)
    raise StoreUnavailable("the database is unavailable (TimeoutError)") from TimeoutError()


async def endless() -> AsyncIterator[bytes]:
    while True:
        yield bytes(320)


async def test_a_store_timeout_while_reading_is_reported_as_the_store_not_the_module(
    encoder: PlayEncoder,
) -> None:
    module = Module()
    p = player(module, encoder)
    p.attach(module.send)
    p.enqueue(PlayItem("i1", "m1", None, store_times_out(), 1000))
    await p.join()
    assert ("play_failed", {"reason": "store_unavailable"}) in module.events
    assert ("play_failed", {"reason": "no_acknowledgement"}) not in module.events


async def test_clearing_does_not_swallow_a_cancellation_of_the_caller(encoder: PlayEncoder) -> None:
    module = Module()
    p = player(module, encoder)  # not attached: the task waits for a socket, mid-item
    p.enqueue(PlayItem("i1", "m1", "cp", endless(), 1000))
    await asyncio.sleep(0)  # the task starts and waits
    caller = asyncio.create_task(p.clear())
    await asyncio.sleep(0)  # clear() cancels the task and awaits it
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_clearing_by_itself_returns_the_cancelled_checkpoints(encoder: PlayEncoder) -> None:
    module = Module()
    p = player(module, encoder)
    p.enqueue(PlayItem("i1", "m1", "cp", endless(), 1000))
    await asyncio.sleep(0)
    assert await p.clear() == ["cp"]


async def test_the_cleared_event_names_the_checkpoints_the_reply_named(encoder: PlayEncoder) -> None:
    """The REST reply and the ``cleared`` event (logged, published) list the same cancelled ones,
    whether the module acknowledges the clear (voipbit's ``media.cleared``) or not."""
    module = Module()
    p = player(module, encoder)
    p.enqueue(PlayItem("i1", "m1", "first", endless(), 1000))
    p.enqueue(PlayItem("i2", "m2", "second", endless(), 1000))
    await asyncio.sleep(0)
    p.attach(module.send)
    replied = await p.clear()
    if encoder.acknowledged:
        assert not [e for e in module.events if e[0] == "cleared"]  # not before the module says so
        p.on_cleared()
    cleared = [fields for name, fields in module.events if name == "cleared"]
    assert replied == ["first", "second"]
    assert [c["cancelled"] for c in cleared] == [replied]


async def test_a_module_that_never_acknowledges_stops_playback_as_such() -> None:
    """voipbit's playedStream never comes (not bidirectional, channel not playing): playback ends
    with ``no_acknowledgement`` instead of sending on forever."""
    module = Module()
    pacer = Pacer(0.02, sync_every=0.1, hold_grace=0.1)
    p = Player(VoipbitPlay(), 8000, pacer, lambda: 0.02, module.notify, tasks=TaskSet("test", log),
               limit_queue=4, send_timeout=1.0, ack_timeout=0.2)  # fmt: skip
    p.attach(module.send)
    p.enqueue(PlayItem("i1", "m1", None, endless(), 1000))
    await p.join()
    assert module.events == [("play_failed", {"reason": "no_acknowledgement"})]
    assert any("media_mgr.internal.sync." in m for m in module.sent)
