"""The ``live_mounts`` and ``relays`` tables: which instance holds a live mount, which runs a relay.

A mount row exists while its source streams on that instance; a lookup only believes rows of
instances still live. A relay row exists until the API deletes it; ``owner`` moves to the survivor
that declared its instance gone, in one UPDATE, so exactly one survivor starts it again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from media_mgr.store.pool import Database, Record


@dataclass(frozen=True)
class LiveMountRow:
    name: str
    instance_id: str
    content_type: str
    info: dict[str, str]
    started_at: datetime


class LiveMountStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._db = Database(pool)

    async def add(self, name: str, instance_id: str, content_type: str, info: dict[str, str]) -> None:
        await self._db.execute(
            """INSERT INTO live_mounts (name, instance_id, content_type, info) VALUES ($1, $2, $3, $4)
               ON CONFLICT (name, instance_id) DO UPDATE
                   SET content_type = excluded.content_type, info = excluded.info, started_at = now()""",
            name, instance_id, content_type, json.dumps(info),
        )  # fmt: skip

    async def claim(self, name: str, instance_id: str, content_type: str, info: dict[str, str]) -> bool:
        """Register a source of ``instance_id`` on ``name`` unless another live instance holds it.

        Check and insert happen in one transaction holding a lock on the name, so two instances whose
        sources arrive in the same instant cannot both see the mount free: the second one waits for
        the first's row and is refused, as Icecast refuses a second source on one mount.
        """
        async with self._db.transaction() as conn:
            lock = "SELECT pg_advisory_xact_lock(hashtextextended('media-mgr mount ' || $1, 0))"
            await conn.execute(lock, name)
            held = await conn.fetchval(
                """SELECT 1 FROM live_mounts m JOIN instances i ON i.id = m.instance_id
                    WHERE m.name = $1 AND m.instance_id <> $2 AND i.ended_at IS NULL LIMIT 1""",
                name, instance_id,
            )  # fmt: skip
            if held:
                return False
            await conn.execute(
                """INSERT INTO live_mounts (name, instance_id, content_type, info) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (name, instance_id) DO NOTHING""",
                name, instance_id, content_type, json.dumps(info),
            )  # fmt: skip
        return True

    async def remove(self, name: str, instance_id: str) -> None:
        await self._db.execute(
            "DELETE FROM live_mounts WHERE name = $1 AND instance_id = $2", name, instance_id
        )

    async def remove_instance(self, instance_id: str) -> int:
        """Forget every mount of an instance (it stopped, or was declared gone)."""
        status = await self._db.execute("DELETE FROM live_mounts WHERE instance_id = $1", instance_id)
        return int(status.split()[-1])

    async def holder(self, name: str, not_instance: str) -> LiveMountRow | None:
        """The live instance (other than ``not_instance``) whose source has ``name``: the newest."""
        row = await self._db.fetchrow(
            """SELECT m.name, m.instance_id, m.content_type, m.info, m.started_at
                 FROM live_mounts m JOIN instances i ON i.id = m.instance_id
                WHERE m.name = $1 AND m.instance_id <> $2 AND i.ended_at IS NULL
                ORDER BY m.started_at DESC LIMIT 1""",
            name,
            not_instance,
        )
        if row is None:
            return None
        return LiveMountRow(name=row["name"], instance_id=row["instance_id"],
                            content_type=row["content_type"], info=json.loads(row["info"]),
                            started_at=row["started_at"])  # fmt: skip


@dataclass(frozen=True)
class RelayRow:
    id: str
    owner: str
    mount: str | None
    media_id: str | None
    host: str
    port: int
    target_mount: str
    user: str
    password: str = field(repr=False)  # the target's source password: never in a log line
    created_at: datetime


_RELAY_COLUMNS = "id, owner, mount, media_id, host, port, target_mount, source_user, password, created_at"


def _relay(r: Record) -> RelayRow:
    return RelayRow(id=r["id"], owner=r["owner"], mount=r["mount"], media_id=r["media_id"], host=r["host"],
                    port=r["port"], target_mount=r["target_mount"], user=r["source_user"],
                    password=r["password"], created_at=r["created_at"])  # fmt: skip


class RelayStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._db = Database(pool)

    async def add(self, row: RelayRow) -> None:
        await self._db.execute(
            f"""INSERT INTO relays ({_RELAY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
            row.id, row.owner, row.mount, row.media_id, row.host, row.port, row.target_mount, row.user,
            row.password, row.created_at,
        )  # fmt: skip

    async def get(self, relay_id: str) -> RelayRow | None:
        row = await self._db.fetchrow(f"SELECT {_RELAY_COLUMNS} FROM relays WHERE id = $1", relay_id)
        return None if row is None else _relay(row)

    async def listing(self) -> list[RelayRow]:
        rows = await self._db.fetch(f"SELECT {_RELAY_COLUMNS} FROM relays ORDER BY created_at, id")
        return [_relay(r) for r in rows]

    async def owned(self, owner: str) -> list[RelayRow]:
        rows = await self._db.fetch(
            f"SELECT {_RELAY_COLUMNS} FROM relays WHERE owner = $1 ORDER BY created_at, id", owner
        )
        return [_relay(r) for r in rows]

    async def remove(self, relay_id: str) -> RelayRow | None:
        """Delete the relay; its row as it was (the owner must stop it), None if there was none."""
        row = await self._db.fetchrow(
            f"DELETE FROM relays WHERE id = $1 RETURNING {_RELAY_COLUMNS}", relay_id
        )
        return None if row is None else _relay(row)

    async def adopt_orphans(self, survivor: str) -> list[RelayRow]:
        """Move to ``survivor`` the relays of instances that stopped cleanly (or are forgotten):
        nobody declares those gone. One UPDATE: of racing survivors, each row goes to one."""
        rows = await self._db.fetch(
            f"""UPDATE relays SET owner = $1
                 WHERE owner <> $1
                   AND owner NOT IN (SELECT id FROM instances WHERE ended_at IS NULL OR end_reason = 'gone')
             RETURNING {_RELAY_COLUMNS}""",
            survivor,
        )
        return [_relay(r) for r in rows]

    async def take_over(self, gone: str, survivor: str) -> list[RelayRow]:
        """Move every relay of ``gone`` to ``survivor``; only one caller gets each row back."""
        rows = await self._db.fetch(
            f"UPDATE relays SET owner = $2 WHERE owner = $1 RETURNING {_RELAY_COLUMNS}", gone, survivor
        )
        return [_relay(r) for r in rows]
