"""Real source clients record through the SHOUT port: libshout 2.4.6 (python-shout, as mod_shout
configures it), ffmpeg ``icecast://`` (PUT and legacy SOURCE) and ezstream. What is stored decodes
(mpg123) to what was sent, sample for sample; it plays back through the ordinary playback URLs; a
listener hears the live mount while it records."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from shout_peers import (
    ShoutUrl,
    content,
    create_recording,
    push,
    push_and_wait,
    start_shout_server,
    wait_state,
)

from servers import RunningServer
from sounds import decode, raw_mp3


@pytest.fixture(scope="module")
def shout(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, int]]:
    srv, port = start_shout_server(database_url, tmp_path_factory.mktemp("shout-sources"),
                                   MEDIA_MGR_TIMEOUT_SHOUT_SOURCE="5")  # fmt: skip
    yield srv, port
    srv.stop()


def assert_stored_as_sent(srv: RunningServer, rec_id: str, sent: bytes, rate: int) -> dict[str, Any]:
    done = wait_state(srv, rec_id, ("complete", "interrupted"))
    assert (done["state"], done["end_reason"]) == ("complete", "eof"), done
    stored = content(srv, rec_id)
    a, b = decode(stored), decode(sent)
    assert len(a) == len(b) and np.array_equal(a, b)  # sample for sample
    assert done["duration_ms"] == round(len(a) * 1000 / rate)
    assert (done["sample_rate"], done["channels"], done["media_id"]) == (rate, 1, rec_id)
    return done


def test_libshout_in_real_time_at_8khz_as_mod_shout_records(shout: tuple[RunningServer, int], tmp_path: Path,
                                                             account_id: str) -> None:  # fmt: skip
    srv, _ = shout
    sent = raw_mp3(tmp_path / "call.mp3", rate=8000, seconds=3.0, bitrate="16k")
    assert sent[:2] == b"\xff\xe3"  # MPEG-2.5 Layer III, 8 kHz mono 16 kbit/s
    rec = create_recording(srv, account_id=account_id, name="call.mp3")
    out = push_and_wait(ShoutUrl.parse(rec["shout_url"]), tmp_path / "call.mp3", pace=True)
    assert "open ok" in out
    done = assert_stored_as_sent(srv, rec["id"], sent, 8000)
    assert content(srv, rec["id"]) == sent  # byte for byte, too
    assert done["media_name"] == f"/{account_id}/{rec['id']}"
    # A media record like any other: the playback issue's URLs play it.
    r = httpx.post(f"{srv.url}/v1/stream-urls", json={"media_name": done["media_name"], "protocol": "shout"})
    assert r.status_code == 200, r.text
    played = httpx.get(r.json()["stream_url"].replace("shout://", "http://"), timeout=30)
    assert played.status_code == 200 and played.content == sent


def test_libshout_faster_than_real_time_at_16khz(shout: tuple[RunningServer, int], tmp_path: Path) -> None:
    srv, _ = shout
    sent = raw_mp3(tmp_path / "wide.mp3", rate=16000, seconds=4.0, bitrate="32k")
    rec = create_recording(srv)
    push_and_wait(ShoutUrl.parse(rec["shout_url"]), tmp_path / "wide.mp3", pace=False)
    assert_stored_as_sent(srv, rec["id"], sent, 16000)


@pytest.mark.parametrize("legacy", [False, True], ids=["put", "legacy-source"])
def test_ffmpeg_icecast_output(shout: tuple[RunningServer, int], tmp_path: Path, legacy: bool) -> None:
    srv, _ = shout
    sent = raw_mp3(tmp_path / "ff.mp3", rate=8000, seconds=3.0)
    rec = create_recording(srv)
    url = rec["shout_url"].replace("shout://", "icecast://")
    done = subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "ff.mp3"), "-c:a", "copy",
                           "-content_type", "audio/mpeg", *(["-legacy_icecast", "1"] if legacy else []),
                           "-f", "mp3", url], capture_output=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = assert_stored_as_sent(srv, rec["id"], sent, 8000)
    assert content(srv, rec["id"])[:3] == b"ID3"  # ffmpeg's tag is kept as sent; frames follow
    assert got["size"] > len(sent)


def test_ffmpeg_with_a_wrong_password_fails_with_401(
    shout: tuple[RunningServer, int], tmp_path: Path
) -> None:
    _srv, port = shout
    raw_mp3(tmp_path / "w.mp3", seconds=1.0)
    done = subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "w.mp3"), "-c:a", "copy", "-f", "mp3",
                           f"icecast://source:nope@127.0.0.1:{port}/wrong.mp3"], capture_output=True, timeout=60)  # fmt: skip
    assert done.returncode != 0 and b"401" in done.stderr


def test_libshout_with_a_wrong_password_gets_login_failed(
    shout: tuple[RunningServer, int], tmp_path: Path
) -> None:
    _srv, port = shout
    raw_mp3(tmp_path / "w.mp3", seconds=1.0)
    proc = push(ShoutUrl("source", "wrong", "127.0.0.1", port, "/w.mp3"), tmp_path / "w.mp3")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1 and b"Login failed" in out


@pytest.mark.parametrize("tls", ["None", "May"])
def test_ezstream(shout: tuple[RunningServer, int], tmp_path: Path, tls: str) -> None:
    srv, port = shout
    sent = raw_mp3(tmp_path / "ez.mp3", rate=8000, seconds=2.0)
    rec = create_recording(srv)
    url = ShoutUrl.parse(rec["shout_url"])
    config = tmp_path / "ez.xml"
    config.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<ezstream>
  <servers><server>
    <protocol>HTTP</protocol><hostname>127.0.0.1</hostname><port>{port}</port>
    <user>{url.user}</user><password>{url.password}</password><tls>{tls}</tls>
  </server></servers>
  <streams><stream><mountpoint>{url.mount}</mountpoint><format>MP3</format><public>No</public></stream></streams>
  <intakes><intake><type>file</type><filename>{tmp_path / "ez.mp3"}</filename><stream_once>Yes</stream_once></intake></intakes>
</ezstream>
""")
    os.chmod(config, 0o600)
    done = subprocess.run(["ezstream", "-c", str(config)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert_stored_as_sent(srv, rec["id"], sent, 8000)


def test_a_listener_hears_the_live_mount_while_it_records(
    shout: tuple[RunningServer, int], tmp_path: Path
) -> None:
    srv, port = shout
    sent = raw_mp3(tmp_path / "live.mp3", rate=8000, seconds=4.0)
    rec = create_recording(srv)
    url = ShoutUrl.parse(rec["shout_url"])
    source = push(url, tmp_path / "live.mp3", pace=True)
    try:
        assert source.stdout is not None and source.stdout.readline().strip() == b"open ok"
        time.sleep(1.0)
        streams = httpx.get(f"{srv.url}/v1/streams", timeout=10).json()["streams"]
        live = [s for s in streams if s["kind"] == "recording" and s["media_id"] == rec["id"]]
        assert live and live[0]["mount"] == url.mount and live[0]["bytes"] > 0  # visible while it records
        # mod_shout's own GET (reference 2.2): a plain HTTP client, no Icy-MetaData.
        listener = subprocess.Popen(["curl", "-sS", "-A", "FreeSWITCH(mod_shout)/1.0", "--max-time", "30",
                                     f"http://127.0.0.1:{port}{url.mount}"], stdout=subprocess.PIPE)  # fmt: skip
        heard, _ = listener.communicate(timeout=40)  # ends by itself when the source ends
        assert listener.returncode == 0
        source.wait(30)
    finally:
        source.kill()
    assert_stored_as_sent(srv, rec["id"], sent, 8000)
    assert len(heard) > 2000 and sent.endswith(heard)  # a burst from a frame start, then everything live
    assert len(decode(heard)) > 8000
    metrics = httpx.get(f"{srv.url}/metrics", timeout=10).text
    assert (
        "media_mgr_shout_listeners_dropped_total 0.0" in metrics and "media_mgr_shout_sources 0.0" in metrics
    )
