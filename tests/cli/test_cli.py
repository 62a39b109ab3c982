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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_export_to_stdout(cli_env: dict[str, str], tmp_path: Path, account_id: str) -> None:
    song = mp3(tmp_path / "s.mp3")
    cli(cli_env, "import", "--account-id", account_id, str(song))
    media_id = json.loads(cli(cli_env, "ls", "--account-id", account_id, "--json").stdout)["id"]
    done = subprocess.run(
        [*media_mgr_command(), "export", media_id, "-o", "-"], env=cli_env, capture_output=True
    )
    assert done.stdout == song.read_bytes()


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_flag_overrides_its_variable(tmp_path: Path) -> None:
    env = {**os.environ, "MEDIA_MGR_HTTP_PORT": "99999"}
    done = subprocess.run([*media_mgr_command(), "--http-port", "70000", "migrate"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "70000" in done.stderr and "99999" not in done.stderr


@pytest.mark.slow
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


def imported_ids(cli_env: dict[str, str], tmp_path: Path, account_id: str, count: int) -> list[str]:
    files = [tone(tmp_path / f"n{i}.wav", seconds=0.2 + i / 10) for i in range(count)]
    done = cli(cli_env, "import", "--account-id", account_id, *map(str, files))
    assert done.returncode == 0, done.stderr
    listed = cli(cli_env, "ls", "--account-id", account_id, "--json").stdout.splitlines()
    return [json.loads(line)["id"] for line in listed]


@pytest.mark.slow
def test_ls_keeps_whole_ids_and_says_what_it_left_out(cli_env: dict[str, str], tmp_path: Path,
                                                       account_id: str) -> None:  # fmt: skip
    ids = imported_ids(cli_env, tmp_path, account_id, 2)
    piped = cli(cli_env, "ls", "--account-id", account_id, "--limit", "1")
    assert piped.stdout.splitlines()[1].split("\t")[0] in ids
    assert "1 of 2 shown (--limit)" in piped.stderr  # said when piped too
    # On a 40-column terminal (a real pty): ids whole, the columns that did not fit named.
    command = " ".join([*media_mgr_command(), "ls", "--account-id", account_id])
    tty = subprocess.run(["script", "-qec", f"stty cols 40; {command}", "/dev/null"], env=cli_env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert all(i in tty.stdout for i in ids), tty.stdout
    assert "columns hidden to fit the terminal: " in tty.stdout and "media_name" in tty.stdout


def test_fit_table_drops_columns_from_the_right_but_never_the_id() -> None:
    from media_mgr.cli.media import fit_table

    rows = [("0123456789abcdef0123456789abcdef", "greeting.wav", "8000")]
    lines, hidden = fit_table(("id", "name", "rate"), rows, 50)
    assert lines[1] == "0123456789abcdef0123456789abcdef  greeting.wav" and hidden == ["rate"]
    lines, hidden = fit_table(("id", "name", "rate"), rows, 10)
    assert lines[1] == rows[0][0] and hidden == ["name", "rate"]
    assert fit_table(("id", "name", "rate"), rows, 200)[1] == []


@pytest.mark.slow
def test_export_writes_to_a_redirect_or_a_pipe(
    cli_env: dict[str, str], tmp_path: Path, account_id: str
) -> None:
    (media_id,) = imported_ids(cli_env, tmp_path, account_id, 1)
    out = tmp_path / "redirected.wav"
    with out.open("wb") as f:  # media-mgr export ID > redirected.wav
        done = subprocess.run([*media_mgr_command(), "export", media_id], env=cli_env, stdout=f,
                              stderr=subprocess.PIPE, cwd=tmp_path, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == (tmp_path / "n0.wav").read_bytes()
    piped = subprocess.run([*media_mgr_command(), "export", media_id], env=cli_env, capture_output=True,
                           cwd=tmp_path, timeout=120)  # fmt: skip
    assert piped.stdout == out.read_bytes()
    assert not list(tmp_path.glob(f"{media_id}.*"))  # no file appeared beside


@pytest.mark.slow
def test_rm_with_one_bad_id_removes_the_others_and_says_so(cli_env: dict[str, str], tmp_path: Path,
                                                           account_id: str) -> None:  # fmt: skip
    first, second = imported_ids(cli_env, tmp_path, account_id, 2)
    bad = "0123456789abcdef0123456789abcdef"
    done = cli(cli_env, "rm", first, bad, second)
    assert done.returncode == 1
    assert f"deleted {first}" in done.stdout and f"deleted {second}" in done.stdout
    assert f"not deleted {bad}" in done.stderr and "deleted 2 of 3; 1 not deleted" in done.stderr
    assert cli(cli_env, "ls", "--account-id", account_id, "--json").stdout == ""


@pytest.mark.slow
def test_record_url_offers_only_what_the_format_can_use(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "MEDIA_MGR_HTTP_PORT": "24517", "MEDIA_MGR_SHOUT_PORT": "8000"}
    wav = cli(env, "record-url", "--format", "wav")
    assert wav.returncode == 0, wav.stderr
    assert wav.stdout.startswith("http://") and "/store/" in wav.stdout and "shout://" not in wav.stdout
    as_json = json.loads(cli(env, "record-url", "--format", "wav", "--json").stdout)
    assert "shout_url" not in as_json and as_json["store_url"].endswith(".wav")
    mp3 = cli(env, "record-url")
    assert mp3.stdout.startswith("shout://") and mp3.stdout.strip().endswith(".mp3")
    assert '<action application="set" data="enable_file_write_buffering=false"/>' in mp3.stderr
