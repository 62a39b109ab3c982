"""The ``audio_stream_sessions`` table: which instance holds each mod_audio_stream session.

Written by the holder when a session starts, changes state or ends (never per frame) and refreshed
every few seconds; read by every other instance to forward control (``/v1/streams/{id}``) and to
find the session a module's reconnect continues. A row only ever changes hands in
:meth:`SessionStore.hand_over`: the recording's owner and the row move from one instance to the
other in one transaction, or neither does. An instance that was declared gone cannot write its
rows back (``upsert`` needs its ``instances`` row live), so rows the survivor deleted stay deleted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from media_mgr.store import recordings
from media_mgr.store.pool import Database, Record

_COLUMNS = """s.id, s.instance_id, s.rejoin_key, s.metadata, s.dialect, s.state, s.stream_id, s.call_id,
              s.recording_id, s.path, s.peer, s.rate, s.recorded_frames, s.started_at, s.updated_at"""
_LIVE = "audio_stream_sessions s JOIN instances i ON i.id = s.instance_id AND i.ended_at IS NULL"


@dataclass(frozen=True)
class SessionRow:
    id: str
    instance_id: str
    rejoin_key: str
    metadata: str | None
    dialect: str
    state: str
    stream_id: str | None
    call_id: str | None
    recording_id: str | None
    path: str
    peer: str
    rate: int | None = None
    recorded_frames: int = 0
    clock: dict[str, Any] | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None


def _text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL, which a module's metadata (any text) and a URL may carry:
    escaped reversibly (backslash first), so equal values still match and come back as they were."""
    if value is None:
        return None
    return value.replace("\\", "\\\\").replace("\x00", "\\0")


def _untext(value: str | None) -> str | None:
    if value is None:
        return None
    return re.sub(r"\\(.)", lambda m: "\x00" if m.group(1) == "0" else m.group(1), value, flags=re.S)


def _row(r: Record) -> SessionRow:
    return SessionRow(
        id=r["id"], instance_id=r["instance_id"], rejoin_key=_untext(r["rejoin_key"]) or "",
        metadata=_untext(r["metadata"]),
        dialect=r["dialect"], state=r["state"], stream_id=r["stream_id"], call_id=r["call_id"],
        recording_id=r["recording_id"], path=_untext(r["path"]) or "", peer=r["peer"], rate=r["rate"],
        recorded_frames=r["recorded_frames"], started_at=r["started_at"], updated_at=r["updated_at"],
    )  # fmt: skip


class SessionStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._db = Database(pool)

    async def upsert(self, row: SessionRow) -> None:
        """Insert or update ``row`` for its instance: a row that moved to another instance, or an
        instance declared gone (its rows deleted by the survivor), is left alone."""
        await self._db.execute(
            """INSERT INTO audio_stream_sessions AS s (id, instance_id, rejoin_key, metadata, dialect, state,
                          stream_id, call_id, recording_id, path, peer, rate, recorded_frames, clock)
               SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::text::jsonb
                WHERE EXISTS (SELECT 1 FROM instances WHERE id = $2 AND ended_at IS NULL)
               ON CONFLICT (id) DO UPDATE
                   SET rejoin_key = excluded.rejoin_key, metadata = excluded.metadata,
                       state = excluded.state, stream_id = excluded.stream_id, call_id = excluded.call_id,
                       recording_id = excluded.recording_id, peer = excluded.peer, rate = excluded.rate,
                       recorded_frames = excluded.recorded_frames, clock = excluded.clock,
                       updated_at = now()
                 WHERE s.instance_id = excluded.instance_id""",
            row.id, row.instance_id, _text(row.rejoin_key), _text(row.metadata), row.dialect, row.state,
            row.stream_id, row.call_id, row.recording_id, _text(row.path), row.peer, row.rate,
            row.recorded_frames, None if row.clock is None else json.dumps(row.clock),
        )  # fmt: skip

    async def delete(self, session_id: str, instance_id: str) -> None:
        await self._db.execute(
            "DELETE FROM audio_stream_sessions WHERE id = $1 AND instance_id = $2", session_id, instance_id
        )

    async def refresh(self, instance_id: str) -> None:
        """Every few seconds: this instance's rows are current (one statement for all of them)."""
        await self._db.execute(
            "UPDATE audio_stream_sessions SET updated_at = now() WHERE instance_id = $1", instance_id
        )

    async def delete_of(self, instance_id: str) -> int:
        """Forget every row of an instance (it was declared gone, or it stops)."""
        status = await self._db.execute(
            "DELETE FROM audio_stream_sessions WHERE instance_id = $1", instance_id
        )
        return int(status.split()[-1])

    async def elsewhere(self, me: str) -> list[SessionRow]:
        """The sessions held by every other live instance."""
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM {_LIVE} WHERE s.instance_id <> $1 ORDER BY s.started_at, s.id", me
        )
        return [_row(r) for r in rows]

    async def named(self, ref: str, me: str) -> list[SessionRow]:
        """Sessions on other live instances whose id, ``stream_id`` or ``call_id`` is ``ref``."""
        rows = await self._db.fetch(
            f"""SELECT {_COLUMNS} FROM {_LIVE}
                 WHERE s.instance_id <> $2 AND (s.id = $1 OR s.stream_id = $1 OR s.call_id = $1)""",
            ref,
            me,
        )
        return [_row(r) for r in rows]

    async def rejoinable(self, key: str, metadata: str | None, me: str) -> SessionRow | None:
        """The most recently written session with this rejoin key (and metadata) on another live
        instance: the one a reconnect that landed here continues, if its holder agrees."""
        row = await self._db.fetchrow(
            f"""SELECT {_COLUMNS} FROM {_LIVE}
                 WHERE s.rejoin_key = $1 AND s.instance_id <> $3
                   AND ($2::text IS NULL OR s.metadata = $2)
                 ORDER BY s.updated_at DESC LIMIT 1""",
            _text(key),
            _text(metadata),
            me,
        )
        return None if row is None else _row(row)

    async def hand_over(
        self, session_id: str, recording_id: str, *, source: tuple[str, int], target: tuple[str, int]
    ) -> bool:
        """Move the session's row and its recording from ``source`` to ``target`` (each an instance id
        and its recording owner key), in one transaction; False (nothing moved) unless ``source``
        still held both and the recording is still being recorded."""
        try:
            async with self._db.transaction() as conn:
                moved = await conn.execute(
                    """UPDATE audio_stream_sessions
                          SET instance_id = $3, state = 'detached', updated_at = now()
                        WHERE id = $1 AND instance_id = $2""",
                    session_id,
                    source[0],
                    target[0],
                )
                if moved.split()[-1] == "0":
                    return False
                if not await recordings.move_owner(conn, recording_id, source[1], target[1]):
                    raise _NotMoved
        except _NotMoved:
            return False
        return True


class _NotMoved(Exception):
    """The recording was no longer the source's to give: roll the row's move back too."""
