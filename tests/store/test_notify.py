"""LISTEN/NOTIFY (store/notify.py): heard when the change commits and never for one rolled back, and
a listener that lost its connection says so at once, then listens again by itself and says that too.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from private_services import PrivatePostgres

from media_mgr.store.notify import Listener, ListenerConfig, notify
from media_mgr.store.pool import Database

pytestmark = pytest.mark.timeout(120)


class Heard:
    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.resets: list[bool] = []
        self.changed = asyncio.Event()

    def on_notify(self, payload: str) -> None:
        self.payloads.append(payload)
        self.changed.set()

    def on_reset(self, live: bool) -> None:
        self.resets.append(live)
        self.changed.set()

    async def until(self, predicate: object, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


async def abandoned(db: Database, channel: str) -> None:
    async with db.transaction() as conn:
        await notify(conn, channel, "rolled back")
        raise RuntimeError("abandon")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    yield p
    await p.close()


async def test_a_notification_goes_out_on_commit_only(database_url: str, pool: asyncpg.Pool) -> None:
    channel = f"test_{secrets.token_hex(4)}"
    heard = Heard()
    async with Listener(ListenerConfig(database_url)) as listener:
        listener.subscribe(channel, heard.on_notify, heard.on_reset)
        await heard.until(lambda: heard.resets[-1:] == [True])
        db = Database(pool)
        with pytest.raises(RuntimeError):
            await abandoned(db, channel)
        async with db.transaction() as conn:
            await notify(conn, channel, "first")
            await asyncio.sleep(0.2)
            assert heard.payloads == []  # not before the commit
        await notify(db, channel, "second")
        await heard.until(lambda: len(heard.payloads) == 2)
    assert heard.payloads == ["first", "second"]


async def test_a_subscriber_hears_only_its_channel(database_url: str, pool: asyncpg.Pool) -> None:
    mine, other = f"test_{secrets.token_hex(4)}", f"test_{secrets.token_hex(4)}"
    heard, elsewhere = Heard(), Heard()
    async with Listener(ListenerConfig(database_url)) as listener:
        listener.subscribe(mine, heard.on_notify, heard.on_reset)
        listener.subscribe(other, elsewhere.on_notify, elsewhere.on_reset)
        await heard.until(lambda: heard.resets[-1:] == [True])
        await elsewhere.until(lambda: elsewhere.resets[-1:] == [True])
        await notify(Database(pool), mine, "x" * 7000)
        await heard.until(lambda: heard.payloads)
    assert heard.payloads == ["x" * 7000] and elsewhere.payloads == []


@pytest.mark.slow
async def test_a_restart_is_told_as_lost_then_live_and_listening_resumes() -> None:
    with PrivatePostgres() as pg:
        heard = Heard()
        config = ListenerConfig(pg.dsn, probe_every=0.5, retry_max=0.5)
        async with Listener(config) as listener:
            listener.subscribe("changes", heard.on_notify, heard.on_reset)
            await heard.until(lambda: heard.resets[-1:] == [True])
            await asyncio.to_thread(pg.stop)
            await heard.until(lambda: heard.resets[-1:] == [False])
            assert not listener.live
            await asyncio.to_thread(pg.start)
            await heard.until(lambda: heard.resets[-1:] == [True])
            assert listener.live and listener.connects == 2
            conn = await asyncpg.connect(pg.dsn)
            try:
                # A backend killed on its own (not a restart) is found too, and replaced.
                before = len(heard.resets)
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'media-mgr listener'"
                )
                await heard.until(lambda: heard.resets[before:] == [False, True])
                await conn.execute("NOTIFY changes, 'after'")
                await heard.until(lambda: heard.payloads == ["after"])
            finally:
                await conn.close()
        assert listener.connects == 3
