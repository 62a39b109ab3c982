"""The media-mgr command as an operator uses it: import, ls, export, rm, and bad configuration."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from servers import media_mgr_command
from sounds import mp3, tone


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, server: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_MGR_")}
    return {**env, "MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(tmp_path / "cli")}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*media_mgr_command(), *args], env=env, capture_output=True, text=True, timeout=120)


def test_import_a_prompt_tree_then_list_export_and_remove(cli_env: dict[str, str], tmp_path: Path,
                                                          account_id: str) -> None:  # fmt: skip
    tree = tmp_path / "prompts"
    (tree / "en-us").mkdir(parents=True)
    (tree / "fr-ca").mkdir()
    tone(tree / "en-us" / "vm-enter_pass.wav", seconds=0.5)
    mp3(tree / "en-us" / "vm-goodbye.mp3", seconds=0.5)
    tone(tree / "fr-ca" / "vm-enter_pass.wav", seconds=0.7, freq=660)
    (tree / "README.txt").write_text("not audio, skipped by extension")
    done = cli(cli_env, "import", "--prompts", "--account-id", account_id, str(tree))
    assert done.returncode == 0, done.stderr
    assert "imported 3 of 3 files" in done.stderr

    ls = cli(cli_env, "ls", "--account-id", account_id, "--json")
    items = {(i["prompt_id"], i["language"]): i for i in map(json.loads, ls.stdout.splitlines())}
    assert set(items) == {("vm-enter_pass", "en-us"), ("vm-goodbye", "en-us"), ("vm-enter_pass", "fr-ca")}
    fr = items[("vm-enter_pass", "fr-ca")]
    assert fr["duration_ms"] == 700 and fr["media_name"] == f"/{account_id}/{fr['id']}"

    out = tmp_path / "out.wav"
    exported = cli(cli_env, "export", fr["id"], "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    assert out.read_bytes() == (tree / "fr-ca" / "vm-enter_pass.wav").read_bytes()

    # Importing again skips the prompts that exist, says so, and succeeds; --replace makes new revisions.
    again = cli(cli_env, "import", "--prompts", "--account-id", account_id, str(tree / "fr-ca"))
    assert again.returncode == 0, again.stderr
    assert "skipped" in again.stderr and "vm-enter_pass.wav" in again.stderr
    assert "imported 0 of 1 files (1 skipped)" in again.stderr
    tone(tree / "fr-ca" / "vm-enter_pass.wav", seconds=0.9)
    replaced = cli(
        cli_env, "import", "--prompts", "--replace", "--account-id", account_id, str(tree / "fr-ca")
    )
    assert replaced.returncode == 0, replaced.stderr
    assert "imported 1 of 1 files (1 replaced)" in replaced.stderr
    after = json.loads(cli(cli_env, "ls", "--account-id", account_id, "--language", "fr-ca", "--json").stdout)
    assert (after["id"], after["revision"], after["duration_ms"]) == (fr["id"], 2, 900)

    table = cli(cli_env, "ls", "--account-id", account_id)
    assert "vm-goodbye" in table.stdout

    removed = cli(cli_env, "rm", fr["id"])
    assert removed.returncode == 0 and f"deleted {fr['id']}" in removed.stdout
    assert cli(cli_env, "rm", fr["id"]).returncode == 1
    assert len(cli(cli_env, "ls", "--account-id", account_id, "--json").stdout.splitlines()) == 2


def test_import_reports_bad_files_and_keeps_going(cli_env: dict[str, str], tmp_path: Path,
                                                  account_id: str) -> None:  # fmt: skip
    good = tone(tmp_path / "good.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....not really")
    done = cli(cli_env, "import", "--account-id", account_id, str(good), str(bad))
    assert done.returncode == 1
    assert "bad.wav" in done.stderr and "imported 1 of 2 files" in done.stderr
    listed = [
        json.loads(x) for x in cli(cli_env, "ls", "--account-id", account_id, "--json").stdout.splitlines()
    ]
    assert [i["sha256"] for i in listed] == [hashlib.sha256(good.read_bytes()).hexdigest()]
    assert bad.exists() and good.exists()  # the operator's files are never consumed


def test_export_to_stdout(cli_env: dict[str, str], tmp_path: Path, account_id: str) -> None:
    song = mp3(tmp_path / "s.mp3")
    cli(cli_env, "import", "--account-id", account_id, str(song))
    media_id = json.loads(cli(cli_env, "ls", "--account-id", account_id, "--json").stdout)["id"]
    done = subprocess.run(
        [*media_mgr_command(), "export", media_id, "-o", "-"], env=cli_env, capture_output=True
    )
    assert done.stdout == song.read_bytes()


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("MEDIA_MGR_HTTP_PORT", "http", "MEDIA_MGR_HTTP_PORT"),
        ("MEDIA_MGR_HTTP_PORT", "70000", "less than or equal to 65535"),
        ("MEDIA_MGR_DATABASE_URL", "mysql://x", "postgresql://"),
        ("MEDIA_MGR_BIND", "not an address", "is not an IP address"),
        ("MEDIA_MGR_LOG_LEVEL", "loud", "MEDIA_MGR_LOG_LEVEL"),
        ("MEDIA_MGR_AMQP_URL", "http://broker", "amqp://"),
    ],
)
def test_a_wrong_setting_stops_start_up_with_a_clear_message(tmp_path: Path, var: str, value: str,
                                                             message: str) -> None:  # fmt: skip
    env = {**os.environ, "MEDIA_MGR_DATA_DIR": str(tmp_path), var: value}
    done = subprocess.run(
        [*media_mgr_command(), "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "invalid configuration" in done.stderr and message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_flag_overrides_its_variable(tmp_path: Path) -> None:
    env = {**os.environ, "MEDIA_MGR_HTTP_PORT": "99999"}
    done = subprocess.run([*media_mgr_command(), "--http-port", "70000", "migrate"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "70000" in done.stderr and "99999" not in done.stderr


def test_url_issues_a_playable_stream_url(cli_env: dict[str, str], server: object, tmp_path: Path,
                                          account_id: str) -> None:  # fmt: skip
    import httpx

    song = mp3(tmp_path / "u.mp3")
    cli(cli_env, "import", "--account-id", account_id, str(song))
    item = json.loads(cli(cli_env, "ls", "--account-id", account_id, "--json").stdout)
    port = server.port  # type: ignore[attr-defined]
    done = cli(
        {**cli_env, "MEDIA_MGR_HTTP_PORT": str(port)}, "url", item["media_name"], "--protocol", "shout"
    )
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url.startswith(f"shout://127.0.0.1:{port}/single/")
    assert httpx.get(url.replace("shout://", "http://", 1)).content == song.read_bytes()
    missing = cli(cli_env, "url", f"/{account_id}/0123456789abcdef0123456789abcdef")
    assert missing.returncode == 1
    assert "no stored media" in missing.stderr
