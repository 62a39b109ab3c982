"""PUT /store/<token>/<name> as FreeSWITCH's http_put sends a finished recording (Kazoo's store proxy,
reference 3.2): credentials from the URL or a loopback peer, type checks, 200 + JSON with "ok": true,
the body streamed into the store and played back like any media."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from servers import RunningServer, start_server
from sounds import mp3, tone


def new_recording(srv: RunningServer, **fields: object) -> dict[str, str]:
    r = httpx.post(f"{srv.url}/v1/recordings", json=fields, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def http_put(url: str, path: Path, content_type: str | None = None) -> subprocess.CompletedProcess[bytes]:
    """curl -T, as mod_http_cache's http_put uploads a file (credentials taken from the URL)."""
    headers = ["-H", f"Content-Type: {content_type}"] if content_type else []
    return subprocess.run(["curl", "-sS", "-T", str(path), *headers, "-w", "\n%{http_code}", url],
                          capture_output=True, timeout=60)  # fmt: skip


def status_and_body(done: subprocess.CompletedProcess[bytes]) -> tuple[int, bytes]:
    body, _, code = done.stdout.rpartition(b"\n")
    return int(code), body


def test_http_put_of_a_finished_recording_is_stored_and_plays(server: RunningServer, tmp_path: Path,
                                                              account_id: str) -> None:  # fmt: skip
    rec = new_recording(server, account_id=account_id)
    assert rec["store_url"].startswith(f"http://{rec['id']}:") and "/store/" in rec["store_url"]
    audio = mp3(tmp_path / "call.mp3", seconds=2.0)
    code, body = status_and_body(http_put(rec["store_url"], audio, "audio/mpeg"))
    assert code == 200 and body.endswith(b"\n")
    answer = json.loads(body)
    assert answer["ok"] is True and answer["id"] == rec["id"] and answer["state"] == "complete"
    assert answer["sha256"] == hashlib.sha256(audio.read_bytes()).hexdigest()
    assert 1900 <= answer["duration_ms"] <= 2100 and answer["media_name"] == f"/{account_id}/{rec['id']}"
    stored = httpx.get(f"{server.url}/v1/media/{rec['id']}/content", timeout=30)
    assert stored.content == audio.read_bytes()
    # FreeSWITCH retries http_put: a repeat is accepted and replaces the content (a new revision).
    wav = tone(tmp_path / "again.wav", seconds=1.0)
    code, body = status_and_body(http_put(rec["store_url"], wav, "audio/wav"))
    assert code == 200, body
    media = httpx.get(f"{server.url}/v1/media/{rec['id']}").json()
    assert (media["revision"], media["content_type"], media["duration_ms"]) == (2, "audio/wav", 1000)


def test_loopback_peer_needs_no_credentials_but_wrong_ones_get_401(
    server: RunningServer, tmp_path: Path
) -> None:
    rec = new_recording(server)
    parts = urlsplit(rec["store_url"])
    bare = f"http://{parts.hostname}:{parts.port}{parts.path}"
    audio = mp3(tmp_path / "a.mp3", seconds=1.0)
    code, _ = status_and_body(http_put(bare, audio, "audio/mpeg"))
    assert code == 200  # no Authorization: the peer is in store_put_acls (127.0.0.0/24)
    wrong = subprocess.run(["curl", "-sS", "-i", "-T", str(audio), "-u", "media:wrong", bare],
                           capture_output=True, timeout=60)  # fmt: skip
    assert wrong.stdout.startswith(b"HTTP/1.1 401")
    assert b'www-authenticate: Basic realm="Kazoo Media Storage Proxy"\r\n' in wrong.stdout


def test_bad_tokens_types_and_names(server: RunningServer, tmp_path: Path) -> None:
    rec = new_recording(server)
    token = urlsplit(rec["store_url"]).path.split("/")[2]
    audio = mp3(tmp_path / "b.mp3", seconds=1.0)
    base = server.url

    def put(path: str, ctype: str) -> httpx.Response:
        return httpx.put(
            f"{base}{path}", content=audio.read_bytes(), headers={"content-type": ctype}, timeout=30
        )

    assert put(f"/store/{'A' * len(token)}/x.mp3", "audio/mpeg").status_code == 404  # not one of ours
    assert put(f"/store/{token}/notes.txt", "text/plain").status_code == 415  # neither type nor name is audio
    assert put(f"/store/{token}/noext", "video/x-nothing-known").status_code == 400  # no extension to give it
    play_token = urlsplit(rec["shout_url"].replace("shout://", "http://")).password
    # a record token is no store token
    assert put(f"/store/{play_token}/x.mp3", "audio/mpeg").status_code == 404
    r = put(f"/store/{token}/recording", "audio/mpeg")  # a name without extension gets one from the type
    assert r.status_code == 200 and r.json()["attachment"] == "recording.mp3"
    not_audio = httpx.put(f"{base}/store/{token}/x.mp3", content=b"not audio at all" * 100,
                          headers={"content-type": "audio/mpeg"}, timeout=30)  # fmt: skip
    assert not_audio.status_code == 415


@pytest.fixture(scope="module")
def strict(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Loopback not allowed without credentials; a configured proxy pair; a small recording limit."""
    data = tmp_path_factory.mktemp("strict")
    srv = start_server({"MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(data),
                        "MEDIA_MGR_STORE_PUT_ACLS": "10.0.0.0/8", "MEDIA_MGR_STORE_PUT_USERNAME": "kazoo",
                        "MEDIA_MGR_STORE_PUT_PASSWORD": "pw", "MEDIA_MGR_LIMIT_RECORDING_BYTES": "100000"},
                       data / "server.log")  # fmt: skip
    yield srv
    srv.stop()


def test_configured_pair_and_acls_as_kazoo_has_them(strict: RunningServer, tmp_path: Path) -> None:
    rec = new_recording(strict)
    assert rec["store_url"].startswith("http://kazoo:pw@")  # Kazoo's authenticated_store URLs
    parts = urlsplit(rec["store_url"])
    bare = f"http://{parts.hostname}:{parts.port}{parts.path}"
    audio = mp3(tmp_path / "c.mp3", seconds=1.0)
    assert status_and_body(http_put(bare, audio, "audio/mpeg"))[0] == 401  # loopback is not in the ACL here
    assert status_and_body(http_put(rec["store_url"], audio, "audio/mpeg"))[0] == 200


def test_an_oversized_put_gets_413_and_stores_nothing(strict: RunningServer, tmp_path: Path) -> None:
    rec = new_recording(strict)
    big = mp3(tmp_path / "big.mp3", seconds=60.0, bitrate="32k")  # 240 kB > the 100 kB limit
    code, _ = status_and_body(http_put(rec["store_url"], big, "audio/mpeg"))
    assert code == 413
    assert httpx.get(f"{strict.url}/v1/recordings/{rec['id']}").json()["state"] == "pending"
