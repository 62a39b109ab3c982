"""Migrations: applied in order, once, safely when instances start together."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
import pytest

from media_mgr.store import migrate

from servers import media_mgr_command, run_sync, start_server


async def _applied(dsn: str) -> list[tuple[int, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [
            (r["version"], r["name"]) for r in await conn.fetch("SELECT * FROM schema_migrations ORDER BY 1")
        ]
    finally:
        await conn.close()


def test_two_servers_migrate_one_empty_database_at_once(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    dsn = new_database()
    envs = [{"MEDIA_MGR_DATABASE_URL": dsn, "MEDIA_MGR_DATA_DIR": str(tmp_path / f"d{i}")} for i in (1, 2)]
    # Start both before waiting on either, so their start-ups overlap.
    import threading

    servers: list[object] = [None, None]

    def boot(i: int) -> None:
        servers[i] = start_server(envs[i], tmp_path / f"s{i}.log")

    threads = [threading.Thread(target=boot, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        for srv in servers:
            assert httpx.get(f"{srv.url}/readyz").json()["ready"] is True  # type: ignore[attr-defined]
        expected = [(m.version, m.name) for m in migrate.discover(migrate.default_dir())]
        assert run_sync(_applied(dsn)) == expected
        logs = [srv.log() for srv in servers]  # type: ignore[attr-defined]
        assert sum(log.count('"migration applied"') for log in logs) == len(expected)
    finally:
        for srv in servers:
            srv.stop()  # type: ignore[attr-defined]


async def test_apply_is_idempotent_and_concurrent_callers_serialise(new_database: Callable[[], str]) -> None:
    dsn = new_database()
    conns = [await asyncpg.connect(dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate.apply(c, migrate.default_dir()) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, len(migrate.discover(migrate.default_dir()))]
        assert await migrate.apply(conns[0], migrate.default_dir()) == []
    finally:
        for c in conns:
            await c.close()


async def test_a_failing_migration_rolls_back_and_is_not_recorded(new_database: Callable[[], str],
                                                                  tmp_path: Path) -> None:  # fmt: skip
    dsn = new_database()
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE a (x int);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE b (x int); SELECT no_such_function();")
    conn = await asyncpg.connect(dsn)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate.apply(conn, tmp_path)
        assert await conn.fetchval("SELECT to_regclass('b')") is None
        assert await conn.fetchval("SELECT to_regclass('a')") == "a"
        assert [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")] == ["001_ok.sql"]
    finally:
        await conn.close()


def test_badly_named_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1-init.sql").write_text("")
    with pytest.raises(ValueError, match=r"NNN_name\.sql"):
        migrate.discover(tmp_path)


def test_migrate_command(new_database: Callable[[], str], tmp_path: Path) -> None:
    dsn = new_database()
    env = {"MEDIA_MGR_DATABASE_URL": dsn, "MEDIA_MGR_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for _ in range(2):
        done = subprocess.run([*media_mgr_command(), "migrate"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "migrations applied" in done.stdout
    assert [v for v, _ in run_sync(_applied(dsn))] == [
        m.version for m in migrate.discover(migrate.default_dir())
    ]


async def test_untagged_mp3_variants_of_earlier_versions_are_forgotten(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    """008: MP3 variants made before the Info tag are dropped (remade tagged on the next request),
    their content orphaned for the sweeper; WAV variants stay."""
    dsn = new_database()
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(migrate.default_dir().glob("*.sql")):
        if int(path.name[:3]) < 8:
            (before / path.name).write_text(path.read_text())
    await migrate.migrate_database(dsn, before, connect_timeout=10)
    conn = await asyncpg.connect(dsn)
    try:
        blob = await conn.fetchval("INSERT INTO blobs (complete) VALUES (true) RETURNING id")
        await conn.execute(
            """INSERT INTO media (id, name, content_type, codec, size, duration_ms, sample_rate, channels,
                                  sha256, blob_id)
               VALUES ($1, 'p', 'audio/wav', 'pcm_s16le', 0, 0, 8000, 1, '', $2)""",
            "a" * 32,
            blob,
        )
        mp3 = await conn.fetchval("INSERT INTO blobs (complete) VALUES (true) RETURNING id")
        wav = await conn.fetchval("INSERT INTO blobs (complete) VALUES (true) RETURNING id")
        for fmt, variant_blob in (("mp3", mp3), ("wav", wav)):
            await conn.execute(
                "INSERT INTO media_variants VALUES ($1, 1, $2, 8000, $3, 0)", "a" * 32, fmt, variant_blob
            )
        await migrate.migrate_database(dsn, migrate.default_dir(), connect_timeout=10)
        assert [r["format"] for r in await conn.fetch("SELECT format FROM media_variants")] == ["wav"]
        orphaned = {r["id"] for r in await conn.fetch("SELECT id FROM blobs WHERE orphaned_at IS NOT NULL")}
        assert orphaned == {mp3}
    finally:
        await conn.close()
