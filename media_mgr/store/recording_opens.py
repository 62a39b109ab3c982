"""Recordings opened for writing in batches: one statement for many, whatever their number.

A thousand calls that start within a few seconds each open a recording. Opened one by one, each
took several round trips (create: the id check, the insert, a read back; begin: a read, the claim
with its blob, another read back) and the database, slowed by the appends of the calls already
running, fell behind the calls. Here a batch is one statement: the blob ids come from the blob
sequence, and the blobs, their first chunk (a WAV header) and the recording rows are written by
data-modifying CTEs of that one statement (the foreign keys are checked at its end), so a batch of
any size is one round trip and one commit.
"""

from __future__ import annotations

from typing import NamedTuple

from media_mgr.store.pool import Database
from media_mgr.store.recording_rows import RecordingFormat, RecordingRow, recording_of

_RETURNED = (
    "id, account_id, name, format, state, origin, end_reason, blob_id, size, duration_ms,"
    " sample_rate, channels, sha256, owner, peer, created_at, started_at, ended_at"
)


class NewOpen(NamedTuple):
    """A new recording, written straight into state ``recording`` (``header``: its blob's start)."""

    recording_id: str
    account_id: str | None
    name: str
    fmt: RecordingFormat
    origin: str
    peer: str
    sample_rate: int | None
    channels: int | None
    header: bytes


class Claim(NamedTuple):
    """A ``pending`` recording to start. A WAV one takes ``sample_rate``, ``channels`` and
    ``header`` and is refused without them (``has_pcm`` False); an MP3 one ignores them."""

    recording_id: str
    origin: str
    peer: str
    sample_rate: int | None
    channels: int | None
    header: bytes
    has_pcm: bool


class Claimed(NamedTuple):
    """One claim's outcome: ``row`` when it was claimed, else what the recording was (``state``
    None: there is none) and its format."""

    row: RecordingRow | None
    state: str | None
    fmt: str | None


async def open_new(db: Database, owner: int, items: list[NewOpen]) -> dict[str, RecordingRow]:
    """Create every recording of ``items`` as being written by ``owner``; an id that already names
    media or a recording is left out of the answer (the caller's ``DuplicateRecording``)."""
    rows = await db.fetch(
        f"""WITH v AS (
                SELECT v.*, nextval(pg_get_serial_sequence('blobs', 'id')) AS blob_id
                  FROM unnest($1::char(32)[], $2::char(32)[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::integer[], $8::smallint[], $9::bytea[])
                       AS v(id, account_id, name, format, origin, peer, sample_rate, channels, header)
                 WHERE NOT EXISTS (SELECT 1 FROM media m WHERE m.id = v.id)
                   AND NOT EXISTS (SELECT 1 FROM recordings r WHERE r.id = v.id)
            ), b AS (
                INSERT INTO blobs (id) SELECT blob_id FROM v
            ), c AS (
                INSERT INTO blob_chunks (blob_id, pos, data)
                SELECT blob_id, 0, header FROM v WHERE length(header) > 0
            ), r AS (
                INSERT INTO recordings (id, account_id, name, format, state, owner, origin, peer,
                                        sample_rate, channels, blob_id, size, started_at, heartbeat_at)
                SELECT id, account_id, name, format, 'recording', $10, origin, peer, sample_rate, channels,
                       blob_id, length(header), now(), now()
                  FROM v
                RETURNING {_RETURNED}
            )
            SELECT {_RETURNED}, false AS has_media FROM r""",
        [i.recording_id for i in items],
        [i.account_id for i in items],
        [i.name for i in items],
        [i.fmt for i in items],
        [i.origin for i in items],
        [i.peer for i in items],
        [i.sample_rate for i in items],
        [i.channels for i in items],
        [i.header for i in items],
        owner,
    )
    return {row["id"]: recording_of(row) for row in rows}


async def claim(db: Database, owner: int, items: list[Claim]) -> dict[str, Claimed]:
    """``pending`` -> ``recording`` for ``owner``, each with a new blob; ids must be distinct.

    What was not claimed is reported as the statement's snapshot saw it (a recording claimed by
    another statement meanwhile shows ``pending`` there: the caller treats it as taken)."""
    items = sorted(items)  # rows locked in one order by every batch
    rows = await db.fetch(
        f"""WITH v AS (
                SELECT * FROM unnest($1::char(32)[], $2::text[], $3::text[], $4::integer[],
                                     $5::smallint[], $6::bytea[], $7::boolean[])
                       AS v(id, origin, peer, sample_rate, channels, header, has_pcm)
            ), u AS (
                UPDATE recordings r
                   SET state = 'recording', owner = $8, origin = v.origin, peer = v.peer,
                       sample_rate = CASE WHEN r.format = 'wav' THEN v.sample_rate END,
                       channels = CASE WHEN r.format = 'wav' THEN v.channels END,
                       blob_id = nextval(pg_get_serial_sequence('blobs', 'id')),
                       size = CASE WHEN r.format = 'wav' THEN length(v.header) ELSE 0 END,
                       started_at = now(), heartbeat_at = now()
                  FROM v
                 WHERE r.id = v.id AND r.state = 'pending' AND (r.format <> 'wav' OR v.has_pcm)
                RETURNING {", ".join(f"r.{c.strip()}" for c in _RETURNED.split(","))}
            ), b AS (
                INSERT INTO blobs (id) SELECT blob_id FROM u
            ), c AS (
                INSERT INTO blob_chunks (blob_id, pos, data)
                SELECT u.blob_id, 0, v.header FROM u JOIN v ON v.id = u.id
                 WHERE u.format = 'wav' AND length(v.header) > 0
            )
            SELECT v.id AS asked, cur.state AS was, cur.format AS was_format, u.*,
                   EXISTS (SELECT 1 FROM media m WHERE m.id = v.id) AS has_media
              FROM v LEFT JOIN u ON u.id = v.id LEFT JOIN recordings cur ON cur.id = v.id""",
        [i.recording_id for i in items],
        [i.origin for i in items],
        [i.peer for i in items],
        [i.sample_rate for i in items],
        [i.channels for i in items],
        [i.header for i in items],
        [i.has_pcm for i in items],
        owner,
    )
    out: dict[str, Claimed] = {}
    for row in rows:
        got = recording_of(row) if row["id"] is not None else None
        out[row["asked"]] = Claimed(got, row["was"], row["was_format"])
    return out
