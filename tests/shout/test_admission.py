"""A source admitted through a real seam that fails after its mount was claimed: the recording cannot be
created because the store refuses it (a trigger in PostgreSQL, on the server's own database). The
failure is answered and logged, and the mount is free again: the next libshout source on it is taken."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from shout_peers import ShoutUrl, push, start_shout_server

from servers import RunningServer
from sounds import raw_mp3

REFUSE_NAMES = """
CREATE TABLE refused_names (name text PRIMARY KEY);
CREATE FUNCTION refuse_names() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM refused_names WHERE name = NEW.name) THEN
        RAISE EXCEPTION 'recording name % refused by the test', NEW.name;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_names BEFORE INSERT ON recordings FOR EACH ROW EXECUTE FUNCTION refuse_names();
"""


def psql(database_url: str, sql: str) -> None:
    subprocess.run(
        ["psql", database_url, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True
    )


@pytest.fixture(scope="module")
def refusing(
    new_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, int, str]]:
    """A server on a database of its own whose ``recordings`` refuse the names in ``refused_names``."""
    database_url = new_database()
    srv, port = start_shout_server(database_url, tmp_path_factory.mktemp("shout-admission"))
    psql(database_url, REFUSE_NAMES)
    yield srv, port, database_url
    srv.stop()


def libshout(port: int, mount: str, audio: Path) -> tuple[int, str]:
    """python-shout as mod_shout runs it, with the configured source password: exit code and output."""
    proc = push(ShoutUrl("source", "hackme", "127.0.0.1", port, mount), audio, pace=False)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out.decode(errors="replace")


def refused_source(refusing: tuple[RunningServer, int, str], mount: str, audio: Path) -> str:
    """A source on ``mount`` whose recording the store refuses to create: libshout's open fails."""
    _srv, port, database_url = refusing
    raw_mp3(audio, seconds=1.0)
    psql(database_url, f"INSERT INTO refused_names VALUES ('{mount.lstrip('/')}')")
    code, out = libshout(port, mount, audio)
    assert code == 1 and "open failed" in out, out  # the mount was claimed, then the store refused
    return out


def test_a_mount_whose_recording_could_not_be_created_takes_the_next_source(
    refusing: tuple[RunningServer, int, str], tmp_path: Path
) -> None:
    refused_source(refusing, "/studio.mp3", tmp_path / "a.mp3")
    psql(refusing[2], "DELETE FROM refused_names")
    code, out = libshout(refusing[1], "/studio.mp3", tmp_path / "a.mp3")
    assert code == 0 and "open ok" in out, out  # not "mount in use": the failed attempt let it go


def test_a_failure_after_the_claim_is_logged_with_its_cause(
    refusing: tuple[RunningServer, int, str], tmp_path: Path
) -> None:
    refused_source(refusing, "/logged.mp3", tmp_path / "b.mp3")
    assert logged_failure(refusing[0], "refused by the test")


def logged_failure(srv: RunningServer, cause: str, timeout: float = 10.0) -> dict[str, Any] | None:
    """The server's "task failed" log entry (owner, traceback) whose traceback names ``cause``."""
    deadline = time.monotonic() + timeout
    while True:
        for line in srv.log().splitlines():
            entry = json.loads(line) if line.startswith("{") else {}
            if entry.get("msg") == "task failed" and cause in entry.get("exc", ""):
                assert str(entry.get("owner", "")).startswith("shout"), entry
                return entry
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)
