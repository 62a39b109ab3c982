"""The ``instances`` table: who is running, where other instances reach it, and who is gone.

An instance is one process (a worker of ``serve --workers N`` on any machine). It registers, beats
every second, and marks itself ``stopped`` on a clean exit. :meth:`InstanceStore.declare_gone` is
the single decision that an instance died: one conditional UPDATE, so however many survivors race,
exactly one gets the row back and closes what the dead instance left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from media_mgr.store.pool import Database, Record

_COLUMNS = """id, owner_key, host, pid, worker, internal_url, started_at, heartbeat_at, ended_at,
              end_reason, ended_by"""


@dataclass(frozen=True)
class InstanceRow:
    id: str
    owner_key: int
    host: str
    pid: int
    worker: int | None
    internal_url: str
    started_at: datetime
    heartbeat_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    ended_by: str | None

    @property
    def live(self) -> bool:
        return self.ended_at is None


def _row(r: Record) -> InstanceRow:
    return InstanceRow(
        id=r["id"], owner_key=r["owner_key"], host=r["host"], pid=r["pid"], worker=r["worker"],
        internal_url=r["internal_url"], started_at=r["started_at"], heartbeat_at=r["heartbeat_at"],
        ended_at=r["ended_at"], end_reason=r["end_reason"], ended_by=r["ended_by"],
    )  # fmt: skip


class InstanceStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._db = Database(pool)

    async def register(
        self, instance_id: str, *, owner_key: int, host: str, pid: int, worker: int | None, internal_url: str
    ) -> None:
        """Insert this instance, or bring its row back to life (it was declared gone while cut off:
        its recordings were closed then, and stay closed; see recordings ``finalize``)."""
        await self._db.execute(
            """INSERT INTO instances (id, owner_key, host, pid, worker, internal_url)
                    VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (id) DO UPDATE
                   SET owner_key = excluded.owner_key, internal_url = excluded.internal_url,
                       heartbeat_at = now(), ended_at = NULL, end_reason = NULL, ended_by = NULL""",
            instance_id, owner_key, host, pid, worker, internal_url,
        )  # fmt: skip

    async def beat(self, instance_id: str) -> bool:
        """Record a heartbeat; False when the row says this instance was declared gone."""
        status = await self._db.execute(
            "UPDATE instances SET heartbeat_at = now() WHERE id = $1 AND ended_at IS NULL", instance_id
        )
        return status.split()[-1] != "0"

    async def stopped(self, instance_id: str) -> None:
        await self._db.execute(
            """UPDATE instances SET ended_at = now(), end_reason = 'stopped'
                WHERE id = $1 AND ended_at IS NULL""",
            instance_id,
        )

    async def get(self, instance_id: str) -> InstanceRow | None:
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM instances WHERE id = $1", instance_id)
        return None if row is None else _row(row)

    async def listing(self, ended_within_seconds: float) -> list[InstanceRow]:
        """Live instances, and those that ended in the last ``ended_within_seconds``."""
        rows = await self._db.fetch(
            f"""SELECT {_COLUMNS} FROM instances
                 WHERE ended_at IS NULL OR ended_at > now() - make_interval(secs => $1)
                 ORDER BY started_at, id""",
            ended_within_seconds,
        )
        return [_row(r) for r in rows]

    async def silent(self, me: str, grace_seconds: float) -> list[InstanceRow]:
        """Instances (not ``me``) not declared ended whose beat is older than ``grace_seconds``,
        counted from the database's start when that is later: a restart interrupts every beat."""
        rows = await self._db.fetch(
            f"""SELECT {_COLUMNS} FROM instances
                 WHERE ended_at IS NULL AND id <> $1
                   AND greatest(heartbeat_at, pg_postmaster_start_time())
                       < now() - make_interval(secs => $2)""",
            me,
            grace_seconds,
        )
        return [_row(r) for r in rows]

    async def declare_gone(self, instance_id: str, by: str, grace_seconds: float) -> bool:
        """True for exactly one caller: the row was live and still silent when this UPDATE ran."""
        status = await self._db.execute(
            """UPDATE instances SET ended_at = now(), end_reason = 'gone', ended_by = $2
                WHERE id = $1 AND ended_at IS NULL
                  AND greatest(heartbeat_at, pg_postmaster_start_time())
                      < now() - make_interval(secs => $3)""",
            instance_id,
            by,
            grace_seconds,
        )
        return status.split()[-1] != "0"

    async def purge(self, older_than_seconds: float) -> int:
        """Forget instances that ended long ago (the registry is not a history)."""
        status = await self._db.execute(
            "DELETE FROM instances WHERE ended_at < now() - make_interval(secs => $1)", older_than_seconds
        )
        return int(status.split()[-1])
