"""The REST admin API for media, against a real server and a real PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from servers import RunningServer
from sounds import mp3, pcm, tone


def upload(srv: RunningServer, path: Path, **fields: str) -> httpx.Response:
    with path.open("rb") as f:
        return httpx.post(f"{srv.url}/v1/media", files={"file": (path.name, f)}, data=fields, timeout=30)


def test_multipart_upload_describes_and_names_the_media(server: RunningServer, audio_dir: Path,
                                                       account_id: str) -> None:  # fmt: skip
    wav = tone(audio_dir / "greeting.wav", rate=16000, seconds=1.5)
    r = upload(server, wav, account_id=account_id.upper(), name="Greeting")
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["account_id"] == account_id  # normalised to lower case
    assert len(item["id"]) == 32
    assert item["media_name"] == f"/{account_id}/{item['id']}"
    assert item["content_type"] == "audio/wav"
    assert (item["sample_rate"], item["channels"], item["duration_ms"]) == (16000, 1, 1500)
    assert item["sha256"] == hashlib.sha256(wav.read_bytes()).hexdigest()
    assert item["size"] == wav.stat().st_size
    assert item["revision"] == 1
    assert r.headers["location"] == f"/v1/media/{item['id']}"
    assert httpx.get(f"{server.url}/v1/media/{item['id']}").json() == item


def test_raw_body_upload_with_query_metadata(server: RunningServer, audio_dir: Path, account_id: str) -> None:
    song = mp3(audio_dir / "hold.mp3", rate=8000, seconds=3)
    r = httpx.post(f"{server.url}/v1/media", params={"account_id": account_id, "name": "hold music"},
                   content=song.read_bytes(), headers={"content-type": "audio/mpeg"})  # fmt: skip
    assert r.status_code == 201, r.text
    item = r.json()
    # 8 kHz mono MP3 is MPEG-2.5, what mod_shout records.
    assert (item["content_type"], item["sample_rate"], item["channels"]) == ("audio/mpeg", 8000, 1)
    assert abs(item["duration_ms"] - 3000) < 150


def test_download_is_byte_identical_and_streamed_with_length(server: RunningServer, audio_dir: Path,
                                                             account_id: str) -> None:  # fmt: skip
    wav = tone(audio_dir / "long.wav", rate=8000, seconds=40)  # 640 kB: several 256 kB chunks
    item = upload(server, wav, account_id=account_id).json()
    r = httpx.get(f"{server.url}/v1/media/{item['id']}/content")
    assert r.status_code == 200
    assert r.content == wav.read_bytes()
    assert r.headers["content-type"] == "audio/wav"
    assert r.headers["content-length"] == str(wav.stat().st_size)
    assert r.headers["etag"] == f'"{item["id"]}-1-wav-8000"'
    head = httpx.head(f"{server.url}/v1/media/{item['id']}/content")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(wav.stat().st_size)


@pytest.mark.parametrize(
    ("encoding", "bits", "codec"), [("mu-law", 8, "pcm_mulaw"), ("a-law", 8, "pcm_alaw")]
)
def test_companded_wav_is_accepted(server: RunningServer, audio_dir: Path, account_id: str, encoding: str,
                                   bits: int, codec: str) -> None:  # fmt: skip
    wav = tone(audio_dir / f"{codec}.wav", encoding=encoding, bits=bits, seconds=1)
    r = upload(server, wav, account_id=account_id)
    assert r.status_code == 201, r.text
    assert (r.json()["codec"], r.json()["duration_ms"]) == (codec, 1000)


def test_replace_content_makes_a_new_revision(
    server: RunningServer, audio_dir: Path, account_id: str
) -> None:
    first = tone(audio_dir / "a.wav", freq=440)
    second = tone(audio_dir / "b.wav", freq=880, rate=16000, seconds=1)
    item = upload(server, first, account_id=account_id, name="menu").json()
    with second.open("rb") as f:
        r = httpx.put(f"{server.url}/v1/media/{item['id']}/content", files={"file": ("b.wav", f)})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["id"] == item["id"] and new["name"] == "menu"
    assert new["revision"] == 2
    assert new["sha256"] == hashlib.sha256(second.read_bytes()).hexdigest()
    assert (new["sample_rate"], new["duration_ms"]) == (16000, 1000)
    got = httpx.get(f"{server.url}/v1/media/{item['id']}/content")
    assert got.content == second.read_bytes()
    assert got.headers["etag"].startswith(f'"{item["id"]}-2-')
    # The raw-body form replaces too.
    r = httpx.put(f"{server.url}/v1/media/{item['id']}/content", content=first.read_bytes())
    assert r.json()["revision"] == 3
    assert httpx.get(f"{server.url}/v1/media/{item['id']}/content").content == first.read_bytes()


def test_delete_then_everything_is_404(server: RunningServer, audio_dir: Path, account_id: str) -> None:
    item = upload(server, tone(audio_dir / "x.wav"), account_id=account_id).json()
    assert httpx.delete(f"{server.url}/v1/media/{item['id']}").status_code == 204
    for method, path in [("GET", ""), ("GET", "/content"), ("DELETE", ""), ("PUT", "/content")]:
        r = httpx.request(method, f"{server.url}/v1/media/{item['id']}{path}", content=b"x")
        assert r.status_code == 404, (method, path)
        assert r.json()["error"] == "not_found"


def test_list_filters_and_paginates(server: RunningServer, audio_dir: Path, account_id: str) -> None:
    wav = tone(audio_dir / "p.wav", seconds=0.5)
    made = [upload(server, wav, account_id=account_id, prompt_id=f"vm-{n}", language=lang, name=f"Prompt {n}")
            for n, lang in [(1, "en-US"), (2, "fr-fr"), (3, "en-us")]]  # fmt: skip
    assert all(r.status_code == 201 for r in made), [r.text for r in made]
    assert made[0].json()["language"] == "en-us"  # lower-cased

    def listing(**params: str | int) -> dict[str, Any]:
        r = httpx.get(f"{server.url}/v1/media", params={"account_id": account_id, **params})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    assert listing()["total"] == 3
    assert [i["prompt_id"] for i in listing(language="en-us")["items"]] == ["vm-1", "vm-3"]
    assert [i["prompt_id"] for i in listing(prompt_id="vm-2")["items"]] == ["vm-2"]
    assert [i["prompt_id"] for i in listing(name="prompt 3")["items"]] == ["vm-3"]
    assert listing(name="%")["total"] == 0  # wildcards are literal
    page = listing(limit=2)
    assert (len(page["items"]), page["total"], page["next_offset"]) == (2, 3, 2)
    assert listing(limit=2, offset=2)["next_offset"] is None


def test_duplicate_prompt_is_a_conflict(server: RunningServer, audio_dir: Path, account_id: str) -> None:
    wav = tone(audio_dir / "p.wav", seconds=0.5)
    assert upload(server, wav, account_id=account_id, prompt_id="vm-dup").status_code == 201
    r = upload(server, wav, account_id=account_id, prompt_id="vm-dup", language="en-us")
    assert r.status_code == 409
    assert r.json()["error"] == "conflict" and "vm-dup" in r.json()["detail"]


def test_text_file_is_415_with_a_clear_message(server: RunningServer, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("this is not audio\n" * 100)
    r = upload(server, text)
    assert r.status_code == 415
    assert r.json()["error"] == "unsupported_media_type"
    assert "not an audio file" in r.json()["detail"]
    assert str(tmp_path) not in r.json()["detail"] and "scratch" not in r.json()["detail"]


def test_other_audio_formats_are_415_naming_the_format(server: RunningServer, audio_dir: Path) -> None:
    flac = audio_dir / "x.flac"
    subprocess.run(["sox", str(tone(audio_dir / "x.wav")), str(flac)], check=True)
    r = upload(server, flac)
    assert r.status_code == 415
    assert "flac" in r.json()["detail"] and "WAV or MP3" in r.json()["detail"]


def test_oversized_upload_is_413_declared_or_streamed(server: RunningServer, audio_dir: Path) -> None:
    wav = tone(audio_dir / "big.wav", rate=48000, seconds=50)  # ~4.8 MB at 16 bits... make it bigger:
    big = audio_dir / "big2.wav"
    subprocess.run(["sox", str(wav), "-b", "32", str(big), "repeat", "1"], check=True)
    assert big.stat().st_size > 8 * 1024 * 1024
    r = httpx.post(f"{server.url}/v1/media", content=big.read_bytes())
    assert r.status_code == 413 and r.json()["error"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must bite while streaming
        with big.open("rb") as f:
            while piece := f.read(65536):
                yield piece

    r = httpx.post(f"{server.url}/v1/media", content=chunks())
    assert r.status_code == 413 and r.json()["error"] == "too_large"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/v1/media?limit=abc", {}, 422),
        ("GET", "/v1/media?limit=0", {}, 422),
        ("GET", "/v1/media?limit=100000", {}, 422),
        ("GET", "/v1/media?account_id=nothex", {}, 422),
        ("GET", "/v1/media?language=english%20please", {}, 422),
        ("POST", "/v1/media?account_id=xyz", {"content": b"RIFF"}, 422),
        ("POST", "/v1/media?prompt_id=bad/name", {"content": b"RIFF"}, 422),
        ("POST", "/v1/media", {"content": b""}, 400),
        ("POST", "/v1/media", {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}}, 400),
        ("POST", "/v1/media", {"content": b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--\r\n",
                               "headers": {"content-type": "multipart/form-data; boundary=b"}}, 400),
        ("GET", "/v1/media/0123456789abcdef0123456789abcdef", {}, 404),
        ("GET", "/v1/nothing-here", {}, 404),
        ("PATCH", "/v1/media", {}, 405),
    ],
)  # fmt: skip
def test_bad_input_gets_a_json_error_never_a_500(server: RunningServer, method: str, path: str,
                                                 kwargs: dict[str, object], status: int) -> None:  # fmt: skip
    r = httpx.request(method, f"{server.url}{path}", **kwargs)  # type: ignore[arg-type]
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"} and body["detail"]
    assert "Traceback" not in r.text


def test_request_id_is_echoed_and_logged_as_json(server: RunningServer) -> None:
    r = httpx.get(
        f"{server.url}/v1/media/0123456789abcdef0123456789abcdef", headers={"x-request-id": "abc123"}
    )
    assert r.headers["x-request-id"] == "abc123"
    # The access line is written once the response has gone out, so it may follow the client's read.
    deadline = time.monotonic() + 10
    while not (mine := logged_with_request_id(server, "abc123")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mine and mine[-1]["status"] == 404 and mine[-1]["path"].startswith("/v1/media/")


def logged_with_request_id(server: RunningServer, rid: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    return [e for e in lines if e.get("request_id") == rid]


def test_health_ready_metrics_and_openapi(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] is True
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "media_mgr_http_requests_total" in metrics
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/v1/media" in spec["paths"] and "/v1/media/{media_id}/content" in spec["paths"]
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_content_can_be_converted_on_download(server: RunningServer, audio_dir: Path) -> None:
    wav = tone(audio_dir / "c.wav", rate=16000, seconds=1)
    item = upload(server, wav).json()
    r = httpx.get(f"{server.url}/v1/media/{item['id']}/content", params={"format": "mp3", "rate": 8000})
    assert r.status_code == 200
    assert r.headers["content-type"] == "audio/mpeg"
    assert r.content[:2] == b"\xff\xe3"  # MPEG-2.5 at 8 kHz
    assert httpx.get(f"{server.url}/v1/media/{item['id']}/content", params={"rate": 9999}).status_code == 400
    assert (
        httpx.get(f"{server.url}/v1/media/{item['id']}/content", params={"format": "ogg"}).status_code == 422
    )


def test_wav_round_trip_decodes_to_the_same_samples(server: RunningServer, audio_dir: Path) -> None:
    wav = tone(audio_dir / "s.wav", rate=8000, seconds=1)
    item = upload(server, wav).json()
    out = audio_dir / "back.wav"
    out.write_bytes(httpx.get(f"{server.url}/v1/media/{item['id']}/content").content)
    assert np.array_equal(pcm(out), pcm(wav))


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF])
def test_a_wav_with_open_ended_sizes_is_stored_with_its_true_sizes(server: RunningServer, audio_dir: Path,
                                                                    declared: int) -> None:  # fmt: skip
    import struct

    wav = tone(audio_dir / "s.wav", seconds=1)
    data = bytearray(wav.read_bytes())
    data_at = data.index(b"data") + 8
    true_size = struct.unpack_from("<I", data, data_at - 4)[0]
    struct.pack_into("<I", data, 4, declared)
    struct.pack_into("<I", data, data_at - 4, declared)  # as a streaming writer leaves them
    r = httpx.post(f"{server.url}/v1/media", content=bytes(data))
    assert r.status_code == 201, r.text
    assert r.json()["duration_ms"] == 1000
    stored = httpx.get(f"{server.url}/v1/media/{r.json()['id']}/content").content
    assert struct.unpack_from("<I", stored, data_at - 4)[0] == true_size
    assert stored[data_at:] == bytes(data[data_at:])
