"""The fleet's table says what each session is now: a change made while the previous one was being
written is written too (real PostgreSQL; the first write is held by a row lock taken meanwhile)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import cast

import asyncpg
from test_handover_clock import CONFIG, new_dialect

from media_mgr.audio_stream.capture.pipeline import Sink
from media_mgr.audio_stream.directory import Directory
from media_mgr.audio_stream.formats import StreamFormat
from media_mgr.audio_stream.session import Session, SessionState
from media_mgr.fleet.peers import Peers
from media_mgr.store import migrate
from media_mgr.store.audio_stream_sessions import SessionStore
from media_mgr.store.instances import InstanceStore


class Me:
    """What the directory asks of ``Peers`` when it writes rows: this instance's id (no peer is
    called here)."""

    def __init__(self, me: str) -> None:
        self.me = me


def session() -> Session:
    async def no_sink(s: Session, fmt: StreamFormat) -> Sink:
        raise AssertionError("not opened here")

    return Session(secrets.token_hex(16), "key", new_dialect("binary"), path="/audio_stream", peer="",
                   config=CONFIG, open_sink=no_sink, publish=lambda *a: None,
                   clock=lambda: 0.0, timing_reliable=lambda: True)  # fmt: skip


def test_a_session_marked_again_while_its_row_is_written_gets_its_latest_state(
    new_database: Callable[[], str],
) -> None:
    async def run() -> None:
        dsn = new_database()
        conn = await asyncpg.connect(dsn)
        await migrate.apply(conn, migrate.default_dir())
        await conn.close()
        async with asyncpg.create_pool(dsn, min_size=2, max_size=4) as pool:
            me = secrets.token_hex(16)
            await InstanceStore(pool).register(
                me, owner_key=1, host="h", pid=1, worker=None, internal_url="u"
            )
            store = SessionStore(pool)
            directory = Directory(store, cast(Peers, Me(me)))
            s = session()
            assert s.state is SessionState.OPENING
            directory.changed(s)
            await directory._write()  # the row exists, "opening"
            async with pool.acquire() as holder:
                lock = holder.transaction()
                await lock.start()
                await holder.execute("SELECT 1 FROM audio_stream_sessions WHERE id = $1 FOR UPDATE", s.id)
                s.state = SessionState.DETACHED
                directory.changed(s)
                writing = asyncio.create_task(directory._write())  # waits for the row lock
                await asyncio.sleep(0.3)
                assert not writing.done()
                s.state = SessionState.ACTIVE  # changed again while the write is in flight
                directory.changed(s)
                await lock.rollback()
            await asyncio.wait_for(writing, 10)
            state = await pool.fetchval("SELECT state FROM audio_stream_sessions WHERE id = $1", s.id)
            assert state == "active"

    asyncio.run(run())
