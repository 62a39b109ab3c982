"""Recording rows, their growing blobs, and the owner lock that tells a live writer from a dead one.

Every statement here is short and commits on its own: an append is one transaction (chunk row plus
the new size), so whatever was appended survives a crash of the process or a restart of PostgreSQL.
Appends are idempotent per byte offset (``blobs.append_at``), so retrying after an ambiguous commit
never duplicates nor loses bytes. Blob chunks and media rows are written by their own modules
(``blobs``, ``media``), inside this module's transactions.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Literal, NamedTuple

import asyncpg

from media_mgr.audio.info import AudioInfo
from media_mgr.store import blobs as blob_rows
from media_mgr.store import media, recording_opens
from media_mgr.store.blobs import BlobInfo, BlobStore
from media_mgr.store.owner_lock import OwnerLock
from media_mgr.store.pool import Connection, Database
from media_mgr.store.recording_opens import Claim, Claimed, NewOpen
from media_mgr.store.recording_rows import (
    COLUMNS,
    FROM,
    Audio,
    DuplicateRecording,
    LostOwnership,
    NotPending,
    RecordingFormat,
    RecordingRow,
    RecordingState,
    Summary,
    recording_of,
)

__all__ = [
    "Appended",
    "Audio",
    "Claim",
    "Claimed",
    "DuplicateRecording",
    "LostOwnership",
    "NewOpen",
    "NotPending",
    "RecordingFormat",
    "RecordingRow",
    "RecordingState",
    "RecordingStore",
    "Summary",
]


class Appended(NamedTuple):
    """One recording's data for ``append_many``: ``data`` goes at byte ``pos`` of its blob."""

    recording_id: str
    blob_id: int
    pos: int
    data: bytes


class RecordingStore:
    def __init__(self, pool: asyncpg.Pool, blobs: BlobStore) -> None:
        self._raw_pool = pool
        self._pool = Database(pool)
        self.blobs = blobs

    async def create(
        self, recording_id: str, account_id: str | None, name: str, fmt: RecordingFormat
    ) -> RecordingRow:
        """A new recording in state ``pending``; ``DuplicateRecording`` if the id is taken."""
        try:
            async with self._pool.transaction() as conn:
                if await media.id_is_taken(conn, recording_id):
                    raise DuplicateRecording(recording_id)
                await conn.execute(
                    "INSERT INTO recordings (id, account_id, name, format) VALUES ($1, $2, $3, $4)",
                    recording_id,
                    account_id,
                    name,
                    fmt,
                )
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateRecording(recording_id) from exc
        got = await self.get(recording_id)
        assert got is not None
        return got

    async def get(self, recording_id: str) -> RecordingRow | None:
        row = await self._pool.fetchrow(f"SELECT {COLUMNS} FROM {FROM} WHERE r.id = $1", recording_id)
        return recording_of(row) if row else None

    async def find(
        self, account_id: str | None, state: str | None, limit: int, offset: int
    ) -> tuple[list[RecordingRow], int]:
        where, args = [], []
        if account_id is not None:
            args.append(account_id)
            where.append(f"r.account_id = ${len(args)}")
        if state is not None:
            args.append(state)
            where.append(f"r.state = ${len(args)}")
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        async with self._pool.acquire() as conn:
            total: int = await conn.fetchval(f"SELECT count(*) FROM recordings r {clause}", *args)
            rows = await conn.fetch(
                f"SELECT {COLUMNS} FROM {FROM} {clause} ORDER BY r.created_at, r.id"
                f" LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
                *args,
                limit,
                offset,
            )
        return [recording_of(r) for r in rows], total

    async def open_new(self, owner: int, items: list[NewOpen]) -> dict[str, RecordingRow]:
        """New recordings written straight into ``recording`` for ``owner``, in one statement
        (``recording_opens.open_new``); an id already taken is left out of the answer."""
        return await recording_opens.open_new(self._pool, owner, items)

    async def claim(self, owner: int, items: list[Claim]) -> dict[str, Claimed]:
        """``pending`` -> ``recording`` for ``owner``, each with an empty blob (its header as the
        start), in one statement (``recording_opens.claim``)."""
        return await recording_opens.claim(self._pool, owner, items)

    async def append(self, recording_id: str, owner: int, blob_id: int, pos: int, data: bytes) -> None:
        """Commit ``data`` at byte ``pos`` of the recording's blob; safe to retry with more data."""
        async with self._pool.transaction() as conn:
            await blob_rows.append_at(conn, blob_id, pos, data)
            result = await conn.execute(
                """UPDATE recordings SET size = $3, heartbeat_at = now(), state = 'recording'
                    WHERE id = $1 AND owner = $2 AND state IN ('recording', 'interrupted')""",
                recording_id,
                owner,
                pos + len(data),
            )
            if result.split()[-1] == "0":
                raise LostOwnership(recording_id)

    async def append_many(self, owner: int, items: list[Appended]) -> set[str]:
        """``append`` for several recordings in one transaction (one commit for all); returns the
        ids ``owner`` no longer holds, whose data was not written."""
        items = sorted(items)  # rows locked in one order by every batch
        async with self._pool.transaction() as conn:
            kept = await conn.fetch(
                """UPDATE recordings AS r SET size = v.size, heartbeat_at = now(), state = 'recording'
                     FROM unnest($1::char(32)[], $2::bigint[]) AS v(id, size)
                    WHERE r.id = v.id AND r.owner = $3 AND r.state IN ('recording', 'interrupted')
                RETURNING r.id""",
                [i.recording_id for i in items],
                [i.pos + len(i.data) for i in items],
                owner,
            )
            ours = {row["id"] for row in kept}
            await blob_rows.append_many(
                conn, [(i.blob_id, i.pos, i.data) for i in items if i.recording_id in ours]
            )
        return {i.recording_id for i in items} - ours

    async def unclaim(self, recording_id: str, owner: int) -> None:
        """``recording`` -> ``pending`` again, for a source that left before sending anything."""
        async with self._pool.transaction() as conn:
            blob_id = await conn.fetchval(
                """SELECT blob_id FROM recordings WHERE id = $1 AND owner = $2 AND state = 'recording'
                   FOR UPDATE""",
                recording_id,
                owner,
            )
            await conn.execute(
                """UPDATE recordings SET state = 'pending', owner = NULL, origin = NULL, peer = NULL,
                          blob_id = NULL, size = 0, sample_rate = NULL, channels = NULL,
                          started_at = NULL, heartbeat_at = NULL
                    WHERE id = $1 AND owner = $2 AND state = 'recording'""",
                recording_id,
                owner,
            )
            if blob_id is not None:
                await blob_rows.orphan(conn, [blob_id])

    async def heartbeat(self, owner: int) -> None:
        """Rows locked by a flush are skipped (the flush sets their heartbeat): never waiting on
        one, the heartbeat cannot deadlock with a batch of flushes (it did, at 2000 sources)."""
        await self._pool.execute(
            """UPDATE recordings SET heartbeat_at = now()
                WHERE id IN (SELECT id FROM recordings WHERE owner = $1 AND state = 'recording'
                             FOR UPDATE SKIP LOCKED)""",
            owner,
        )

    async def rewrite_start(self, blob_id: int, header: bytes) -> None:
        """Overwrite the first bytes of a blob (a WAV header whose sizes are now known)."""
        await self.blobs.rewrite_start(blob_id, header)

    def owner_lock(self) -> OwnerLock:
        return OwnerLock(self._raw_pool)

    def read(self, blob_id: int) -> AsyncIterator[bytes]:
        return self.blobs.read(blob_id)

    async def finalize(
        self,
        recording: RecordingRow,
        state: Literal["complete", "interrupted"],
        end_reason: str,
        summary: Summary,
        *,
        owner: int | None,
    ) -> RecordingRow:
        """Close the recording and, when it holds audio, make (or refresh) its media record.

        ``owner`` None closes it whoever wrote it (recovery) and clears its owner, so a writer that
        was only cut off finds, when it comes back, that it no longer owns the row (``append`` and
        ``finalize`` raise ``LostOwnership``) instead of reviving it; else only if ``owner`` still does.
        """
        assert recording.blob_id is not None
        async with self._pool.transaction() as conn:
            result = await conn.execute(
                """UPDATE recordings SET state = $2, end_reason = $3, size = $4, sha256 = $5,
                          duration_ms = $6, sample_rate = coalesce($7, sample_rate),
                          channels = coalesce($8, channels), ended_at = now(),
                          owner = CASE WHEN $9::integer IS NULL THEN NULL ELSE owner END
                    WHERE id = $1 AND ($9::integer IS NULL OR owner = $9)""",
                recording.id,
                state,
                end_reason,
                summary.size,
                summary.sha256,
                summary.duration_ms,
                summary.sample_rate,
                summary.channels,
                owner,
            )
            if result.split()[-1] == "0":
                raise LostOwnership(recording.id)
            blob = BlobInfo(recording.blob_id, summary.size, summary.sha256)
            await blob_rows.mark_complete(conn, blob.id, blob.size, blob.sha256)
            if summary.duration_ms > 0 and summary.sample_rate and summary.channels:
                info = AudioInfo(recording.format, summary.codec, summary.sample_rate, summary.channels,
                                 summary.duration_ms)  # fmt: skip
                await media.put_for_recording(
                    conn, recording.id, recording.account_id, recording.name, info, blob,
                    previous_blob_id=recording.blob_id,
                )  # fmt: skip
        got = await self.get(recording.id)
        assert got is not None
        return got

    async def store_content(
        self, recording_id: str, fmt: RecordingFormat, audio: Audio, content: AsyncIterable[bytes]
    ) -> RecordingRow | None:
        """A whole file for the recording (a /store/ PUT): blob, row and media record in one transaction.

        A repeated PUT (FreeSWITCH retries ``http_put``) replaces the content with a new revision.
        """
        async with self._pool.transaction() as conn:
            row = await conn.fetchrow(
                f"SELECT {COLUMNS} FROM {FROM} WHERE r.id = $1 FOR UPDATE OF r", recording_id
            )
            if row is None:
                return None
            recording = recording_of(row)
            if recording.state == "recording":
                raise NotPending(recording.state)
            blob = await self.blobs.write(conn, content)
            await conn.execute(
                """UPDATE recordings SET state = 'complete', end_reason = 'eof', origin = 'store',
                          format = $2,
                          blob_id = $3, size = $4, sha256 = $5, duration_ms = $6, sample_rate = $7,
                          channels = $8, started_at = coalesce(started_at, now()), ended_at = now()
                    WHERE id = $1""",
                recording_id,
                fmt,
                blob.id,
                blob.size,
                blob.sha256,
                audio.duration_ms,
                audio.sample_rate,
                audio.channels,
            )
            info = AudioInfo(fmt, audio.codec, audio.sample_rate, audio.channels, audio.duration_ms)
            await media.put_for_recording(
                conn, recording_id, recording.account_id, recording.name, info, blob,
                previous_blob_id=recording.blob_id,
            )  # fmt: skip
            if recording.blob_id is not None and recording.blob_id != blob.id:
                await blob_rows.orphan(conn, [recording.blob_id])
        return await self.get(recording_id)

    async def stale_owners(self, me: int, grace_seconds: float) -> list[int]:
        """Owners (not ``me``) of recordings whose heartbeat stopped more than ``grace_seconds`` ago,
        counted from the database's start when that is later: a restart drops every owner's lock,
        and a live owner needs that long to take its lock again and beat (owner_lock.py)."""
        rows = await self._pool.fetch(
            """SELECT DISTINCT owner FROM recordings
                WHERE state = 'recording' AND owner <> $1
                  AND greatest(heartbeat_at, pg_postmaster_start_time())
                      < now() - make_interval(secs => $2)""",
            me,
            grace_seconds,
        )
        return [r["owner"] for r in rows]

    async def live_of(self, owner: int) -> list[RecordingRow]:
        rows = await self._pool.fetch(
            f"SELECT {COLUMNS} FROM {FROM} WHERE r.state = 'recording' AND r.owner = $1", owner
        )
        return [recording_of(r) for r in rows]


async def move_owner(conn: Connection, recording_id: str, source: int, target: int) -> bool:
    """Hand a recording being written from one instance's owner key to another's (an audio_stream
    session moving with its module's reconnect): one UPDATE that only the current owner's move wins."""
    status = await conn.execute(
        """UPDATE recordings SET owner = $3, heartbeat_at = now()
            WHERE id = $1 AND owner = $2 AND state = 'recording'""",
        recording_id,
        source,
        target,
    )
    return status.split()[-1] != "0"
