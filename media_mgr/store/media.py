"""Media records: the only SQL that reads or writes the ``media`` table.

Every change to a record (made, new content, deleted) sends ``NOTIFY media_mgr_media, '<id>'`` in
its own transaction, so each instance's cache (media.cache) drops its copy when the change commits.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from media_mgr.audio.info import AudioInfo
from media_mgr.store import blobs as blob_rows
from media_mgr.store import variants
from media_mgr.store.blobs import BlobInfo, BlobStore
from media_mgr.store.notify import notify
from media_mgr.store.pool import Connection, Database
from media_mgr.store.rows import Row

MEDIA_CHANNEL = "media_mgr_media"
"""Where record changes are announced; the payload is the media id."""

_COLUMNS = (
    "id, account_id, prompt_id, language, name, content_type, codec, size, duration_ms,"
    " sample_rate, channels, sha256, revision, blob_id, created_at, updated_at"
)


@dataclass(frozen=True, eq=False)
class MediaRow(Row):
    """One ``media`` row; what it means (its Media-Name, its JSON) is ``media.models.MediaItem``."""

    id: str
    account_id: str | None
    prompt_id: str | None
    language: str | None
    name: str
    content_type: str
    codec: str
    size: int
    duration_ms: int
    sample_rate: int
    channels: int
    sha256: str
    revision: int
    blob_id: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewMedia:
    """The caller-chosen part of a media record (the rest comes from the content)."""

    account_id: str | None
    name: str
    prompt_id: str | None = None
    language: str | None = None
    media_id: str | None = None


@dataclass(frozen=True)
class MediaFilter:
    """Which records a listing returns, and which page of them."""

    account_id: str | None = None
    system: bool | None = None
    prompt_id: str | None = None
    language: str | None = None
    name: str | None = None
    limit: int = 100
    offset: int = 0


class DuplicatePrompt(Exception):
    """(owner, prompt_id, language) is already taken."""


class DuplicateId(Exception):
    """The media id is already taken (by media or by a recording: one id space)."""


async def id_is_taken(conn: Connection, item_id: str) -> bool:
    """Whether ``item_id`` already names media (any account's or the system's) or a recording.

    Media and recordings share one id space (a recording's media record has the recording's id),
    so a caller-chosen id for either must name nothing yet. The transaction-scoped advisory lock
    makes two creations of the same id wait for each other, so both cannot pass this check.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('media-mgr id ' || $1, 0))", item_id)
    taken: bool = await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM media WHERE id = $1)
                  OR EXISTS (SELECT 1 FROM recordings WHERE id = $1)""",
        item_id,
    )
    return taken


def _row(row: asyncpg.Record) -> MediaRow:
    return MediaRow(**{k: row[k] for k in MediaRow.__dataclass_fields__})


class MediaStore:
    def __init__(self, pool: asyncpg.Pool, blobs: BlobStore) -> None:
        self._pool = Database(pool)
        self.blobs = blobs

    async def create(
        self, media_id: str, meta: NewMedia, info: AudioInfo, content: AsyncIterable[bytes]
    ) -> MediaRow:
        """Write the content and the record in one transaction: both exist, or neither."""
        async with self._pool.transaction() as conn:
            if await id_is_taken(conn, media_id):
                raise DuplicateId(media_id)
            blob = await self.blobs.write(conn, content)
            try:
                row = await conn.fetchrow(
                    f"""INSERT INTO media (id, account_id, prompt_id, language, name, content_type, codec,
                               size, duration_ms, sample_rate, channels, sha256, blob_id)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                        RETURNING {_COLUMNS}""",
                    media_id,
                    meta.account_id,
                    meta.prompt_id,
                    meta.language,
                    meta.name,
                    *_content(info, blob),
                )
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name == "media_prompt_key":
                    raise DuplicatePrompt(str(exc)) from exc
                raise DuplicateId(str(exc)) from exc
            await notify(conn, MEDIA_CHANNEL, media_id)
        assert row is not None
        return _row(row)

    async def replace_content(
        self, media_id: str, info: AudioInfo, content: AsyncIterable[bytes]
    ) -> MediaRow | None:
        """New content, new revision; the old blob is orphaned, not deleted (downloads in flight)."""
        async with self._pool.transaction() as conn:
            old = await conn.fetchval("SELECT blob_id FROM media WHERE id = $1 FOR UPDATE", media_id)
            if old is None:
                return None
            blob = await self.blobs.write(conn, content)
            row = await conn.fetchrow(
                f"""UPDATE media SET content_type = $2, codec = $3, size = $4, duration_ms = $5,
                           sample_rate = $6, channels = $7, sha256 = $8, blob_id = $9,
                           revision = revision + 1, updated_at = now()
                     WHERE id = $1 RETURNING {_COLUMNS}""",
                media_id,
                *_content(info, blob),
            )
            await _orphan(conn, media_id, old)
            await notify(conn, MEDIA_CHANNEL, media_id)
        assert row is not None
        return _row(row)

    async def get(self, media_id: str) -> MediaRow | None:
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM media WHERE id = $1", media_id)
        return _row(row) if row else None

    async def get_for_playback(self, media_id: str, token_nonce: bytes) -> tuple[MediaRow | None, bool]:
        """The item and whether the token was revoked, in one round trip (the hot path of playback)."""
        row = await self._pool.fetchrow(
            f"""SELECT m.*, EXISTS (SELECT 1 FROM revoked_tokens WHERE nonce = $2) AS revoked
                  FROM (SELECT 1) AS one
                  LEFT JOIN (SELECT {_COLUMNS} FROM media WHERE id = $1) AS m ON true""",
            media_id,
            token_nonce,
        )
        assert row is not None
        return (_row(row) if row["id"] is not None else None), bool(row["revoked"])

    async def delete(self, media_id: str) -> bool:
        async with self._pool.transaction() as conn:
            blob_id = await conn.fetchval("SELECT blob_id FROM media WHERE id = $1 FOR UPDATE", media_id)
            if blob_id is None:
                return False
            await _orphan(conn, media_id, blob_id)
            await conn.execute("DELETE FROM media WHERE id = $1", media_id)
            await notify(conn, MEDIA_CHANNEL, media_id)
        return True

    async def list(self, f: MediaFilter) -> tuple[list[MediaRow], int]:
        """One page of items, oldest first, and the total count matching the filter."""
        where: list[str] = []
        args: list[Any] = []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if f.account_id is not None:
            where.append(f"account_id = {arg(f.account_id)}")
        if f.system is True:
            where.append("account_id IS NULL")
        elif f.system is False:
            where.append("account_id IS NOT NULL")
        if f.prompt_id is not None:
            where.append(f"prompt_id = {arg(f.prompt_id)}")
        if f.language is not None:
            where.append(f"language = {arg(f.language)}")
        if f.name is not None:
            where.append(f"name ILIKE {arg(_like(f.name))} ESCAPE '\\'")
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        async with self._pool.acquire() as conn:
            total: int = await conn.fetchval(f"SELECT count(*) FROM media {clause}", *args)
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM media {clause} ORDER BY created_at, id"
                f" LIMIT {arg(f.limit)} OFFSET {arg(f.offset)}",
                *args,
            )
        return [_row(r) for r in rows], total

    async def find_prompt(
        self, account_id: str | None, prompt_id: str, languages: Sequence[str], *, with_system: bool = False
    ) -> MediaRow | None:
        """The prompt in the first of ``languages`` that has it (one indexed query).

        The owner's prompt wins over the system one in the same language; with ``with_system``
        a system prompt in an earlier language wins over the owner's in a later one, as Kazoo's
        account prompt map (seeded with the system map) does.
        """
        if not languages:
            return None
        owners = "coalesce(account_id, '') = coalesce($1, '')"
        if with_system and account_id is not None:
            owners = "(account_id = $1 OR account_id IS NULL)"
        row = await self._pool.fetchrow(
            f"""SELECT {_COLUMNS} FROM media
                 WHERE {owners} AND prompt_id = $2 AND language = ANY($3::text[])
                 ORDER BY array_position($3::text[], language), account_id IS NULL LIMIT 1""",
            account_id,
            prompt_id,
            list(languages),
        )
        return _row(row) if row else None


async def put_for_recording(
    conn: Connection,
    media_id: str,
    account_id: str | None,
    name: str,
    info: AudioInfo,
    blob: BlobInfo,
    *,
    previous_blob_id: int | None,
) -> bool:
    """A recording's media record (same id), inside the recording's transaction: made on the
    first close, refreshed on a later one; new content is a new revision, as ``replace_content``.

    An existing row is refreshed only if it is this recording's own: same owner and the content
    the recording held before (``previous_blob_id``). Any other row with that id (another
    account's media, a system prompt) is left as it is and False returned; the owner column is
    never updated.
    """
    old = await conn.fetchval("SELECT blob_id FROM media WHERE id = $1 FOR UPDATE", media_id)
    result = await conn.execute(
        """INSERT INTO media (id, account_id, name, content_type, codec, size, duration_ms, sample_rate,
                              channels, sha256, blob_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (id) DO UPDATE SET content_type = EXCLUDED.content_type, codec = EXCLUDED.codec,
                  size = EXCLUDED.size, duration_ms = EXCLUDED.duration_ms,
                  sample_rate = EXCLUDED.sample_rate, channels = EXCLUDED.channels,
                  sha256 = EXCLUDED.sha256, blob_id = EXCLUDED.blob_id, updated_at = now(),
                  revision = media.revision + 1
            WHERE media.account_id IS NOT DISTINCT FROM EXCLUDED.account_id
              AND media.blob_id = $12""",
        media_id,
        account_id,
        name,
        *_content(info, blob),
        previous_blob_id,
    )
    if result.split()[-1] == "0":
        return False
    await notify(conn, MEDIA_CHANNEL, media_id)
    if old is not None and old != blob.id:
        await variants.drop_all(conn, media_id)  # made from the old content
    return True


async def _orphan(conn: Connection, media_id: str, blob_id: int) -> None:
    """Mark an old content blob and every variant made from it for the sweeper."""
    await blob_rows.orphan(conn, [blob_id])
    await variants.drop_all(conn, media_id)


def _content(info: AudioInfo, blob: BlobInfo) -> tuple[str, str, int, int, int, int, str, int]:
    """The content columns, in the order every statement here lists them."""
    return (
        info.content_type, info.codec, blob.size, info.duration_ms, info.sample_rate, info.channels,
        blob.sha256, blob.id,
    )  # fmt: skip


def _like(text: str) -> str:
    """A case-insensitive substring pattern with the LIKE wildcards escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
