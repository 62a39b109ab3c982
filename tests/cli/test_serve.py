"""``media-mgr serve`` as a newcomer meets it: no system ffmpeg, offline /docs, JSON-only logs, clean
stops, one-line start-up errors, and ``url`` issuing the running server's real ports."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from servers import RunningServer, media_mgr_command, start_server
from sounds import decode, tone


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_MGR_")}
    return {**env, **extra}


def parse_log(log: str) -> list[dict[str, object]]:
    """Every line of a server's output is one JSON object (no raw warnings, tracebacks or colours)."""
    records = [json.loads(line) for line in log.splitlines()]
    assert "\x1b[" not in log
    assert not any("color_message" in r for r in records)
    return records


def aligned_correlation(reference: np.ndarray, decoded: np.ndarray, max_lag: int) -> float:
    size = len(reference) + len(decoded)
    cross = np.fft.irfft(np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(reference, size)), size)
    lag = int(np.argmax(cross[:max_lag]))
    n = min(len(reference), len(decoded) - lag)
    return float(np.corrcoef(reference[:n], decoded[lag : lag + n])[0, 1])


@pytest.mark.slow
def test_without_ffmpeg_on_path_it_uploads_probes_and_transcodes(database_url: str, tmp_path: Path) -> None:
    """PATH holds only the venv's bin: probing is PyAV, transcoding imageio-ffmpeg's binary."""
    path = str(Path(sys.executable).parent)
    assert not any((Path(path) / tool).exists() for tool in ("ffmpeg", "ffprobe"))
    env = clean_env(PATH=path, MEDIA_MGR_DATABASE_URL=database_url, MEDIA_MGR_DATA_DIR=str(tmp_path / "d"))
    srv = start_server(env, tmp_path / "server.log")
    try:
        wav = tone(tmp_path / "t.wav", rate=16000, seconds=2)
        with wav.open("rb") as f:
            r = httpx.post(f"{srv.url}/v1/media", files={"file": ("t.wav", f)}, timeout=30)
        assert r.status_code == 201, r.text
        item = r.json()
        assert (item["codec"], item["sample_rate"], item["duration_ms"]) == ("pcm_s16le", 16000, 2000)
        bad = httpx.post(f"{srv.url}/v1/media", files={"file": ("x.wav", b"RIFF....not really")}, timeout=30)
        assert bad.status_code == 415 and "not an audio file" in bad.json()["detail"]

        def fetch(query: str = "", **extra: object) -> bytes:
            issued = httpx.post(f"{srv.url}/v1/stream-urls", json={"media_name": item["media_name"], **extra})
            assert issued.status_code == 200, issued.text
            got = httpx.get(issued.json()["stream_url"] + query, timeout=60)
            assert got.status_code == 200, got.text
            return got.content

        mp3 = fetch(format="mp3")
        assert mp3[:2] == b"\xff\xf3"  # MPEG-2 (16 kHz), no ID3 tag
        reference = np.frombuffer(wav.read_bytes()[44:], dtype="<i2").astype(float)
        assert aligned_correlation(reference, decode(mp3).astype(float), 4000) > 0.98
        wav8k = fetch("?rate=8000")  # resampled by the bundled ffmpeg
        assert wav8k[:4] == b"RIFF" and int.from_bytes(wav8k[24:28], "little") == 8000
        resampled = np.frombuffer(wav8k[44:], dtype="<i2").astype(float)
        assert aligned_correlation(reference[::2], resampled, 400) > 0.98
    finally:
        srv.stop()
    parse_log(srv.log())


def test_docs_work_offline(server: RunningServer) -> None:
    page = httpx.get(f"{server.url}/docs")
    assert page.status_code == 200
    assert not re.search(r"https?://", page.text.replace(server.url, "")), "the page loads nothing remote"
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for asset in assets:
        got = httpx.get(f"{server.url}{asset}")
        assert got.status_code == 200 and len(got.content) > 1000, asset
    redoc = httpx.get(f"{server.url}/redoc")
    assert redoc.status_code == 200 and "cdn" not in redoc.text
    js = re.search(r"""src=['"]([^'"]+redoc[^'"]+)['"]""", redoc.text)
    assert js and httpx.get(f"{server.url}{js.group(1)}").status_code == 200
    assert httpx.get(f"{server.url}/openapi.json").json()["openapi"].startswith("3.")


@pytest.mark.slow
def test_serve_flags_after_the_subcommand_ctrl_c_and_url_for_the_real_ports(
    database_url: str, tmp_path: Path, account_id: str
) -> None:
    data = tmp_path / "d"
    env = clean_env(MEDIA_MGR_DATABASE_URL=database_url, MEDIA_MGR_DATA_DIR=str(data))
    log = tmp_path / "server.log"
    with log.open("wb") as out:  # flags after the subcommand, as a newcomer types them
        proc = subprocess.Popen([*media_mgr_command(), "serve", "--http-port", "0", "--shout-port", "0"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    srv = RunningServer(proc, "", 0, log)
    try:
        bound = wait_for_runfile(data, proc)
        tone(tmp_path / "u.wav")
        cli = {**env, "MEDIA_MGR_HTTP_PORT": "0", "MEDIA_MGR_SHOUT_PORT": "0"}
        subprocess.run([*media_mgr_command(), "import", "--account-id", account_id, str(tmp_path / "u.wav")],
                       env=cli, check=True, capture_output=True)  # fmt: skip
        listed = subprocess.run([*media_mgr_command(), "ls", "--account-id", account_id, "--json"], env=cli,
                                capture_output=True, text=True, check=True)  # fmt: skip
        name = json.loads(listed.stdout)["media_name"]
        url = subprocess.run([*media_mgr_command(), "url", name], env=cli, capture_output=True, text=True)
        assert url.returncode == 0, url.stderr
        assert url.stdout.startswith(f"http://127.0.0.1:{bound['http_port']}/single/")
        assert httpx.get(url.stdout.strip()).content == (tmp_path / "u.wav").read_bytes()
        rec = subprocess.run([*media_mgr_command(), "record-url"], env=cli, capture_output=True, text=True)
        assert rec.returncode == 0, rec.stderr
        assert f"@127.0.0.1:{bound['shout_port']}/" in rec.stdout
        assert 'data="enable_file_write_buffering=false"' in rec.stderr
    finally:
        assert srv.stop(signal.SIGINT) == 0  # Ctrl-C ends serve with status 0
    assert not (data / "serve.json").exists()
    parse_log(srv.log())
    # With the server gone and port 0, url cannot know the port: one line, status 1.
    gone = subprocess.run([*media_mgr_command(), "url", "/system_media/x"], env={**env, "MEDIA_MGR_HTTP_PORT": "0"},
                          capture_output=True, text=True)  # fmt: skip
    assert gone.returncode == 1 and "MEDIA_MGR_HTTP_PORT is 0" in gone.stderr
    assert gone.stderr.count("\n") == 1 and "Traceback" not in gone.stderr


def wait_for_runfile(data: Path, proc: subprocess.Popen[bytes]) -> dict[str, int]:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            bound: dict[str, int] = json.loads((data / "serve.json").read_text())
            if httpx.get(f"http://127.0.0.1:{bound['http_port']}/readyz").status_code == 200:
                return bound
        except (OSError, ValueError, httpx.HTTPError):
            pass
        assert proc.poll() is None, "serve exited"
        time.sleep(0.1)
    raise AssertionError("serve never wrote serve.json")


def held_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize(
    "case", ["unreachable", "no database", "no role", "http port in use", "shout port in use"]
)
def test_start_up_failures_are_one_line(database_url: str, tmp_path: Path, case: str) -> None:
    base = database_url.rsplit("/", 1)[0]
    sock, port = held_port()
    env = clean_env(MEDIA_MGR_DATABASE_URL=database_url, MEDIA_MGR_DATA_DIR=str(tmp_path),
                    MEDIA_MGR_HTTP_PORT="0", MEDIA_MGR_SHOUT_PORT="0")  # fmt: skip
    expected = {
        "unreachable": ("MEDIA_MGR_DATABASE_URL", f"postgresql://u:pw@127.0.0.1:{port + 0}/x", "cannot reach"),
        "no database": ("MEDIA_MGR_DATABASE_URL", f"{base}/no_such_db_here", "does not exist"),
        "no role": ("MEDIA_MGR_DATABASE_URL", base.replace("postgres@", "no_such_role@") + "/postgres",
                    'role "no_such_role" does not exist'),
        "http port in use": ("MEDIA_MGR_HTTP_PORT", str(port), f"{port} (set by MEDIA_MGR_HTTP_PORT)"),
        "shout port in use": ("MEDIA_MGR_SHOUT_PORT", str(port), f"{port} (set by MEDIA_MGR_SHOUT_PORT)"),
    }  # fmt: skip
    variable, value, message = expected[case]
    if case == "unreachable":
        sock.close()  # nothing listens there now
    try:
        done = subprocess.run([*media_mgr_command(), "serve"], env={**env, variable: value}, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
    finally:
        sock.close()
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert "Traceback" not in done.stderr and "pw@" not in done.stderr
