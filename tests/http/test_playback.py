"""Per-request stream URLs, fetched the way FreeSWITCH's clients fetch them: curl+sox
(mod_shell_stream's fetch script), mod_shout's exact GET, mpg123, ffmpeg, curl ranges."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from servers import RunningServer, start_server
from sounds import mp3, pcm, tone

ROOT = Path(__file__).resolve().parents[2]
FETCH = ROOT / "scripts" / "fetch_remote_audio.sh"


def upload(srv: RunningServer, path: Path, **fields: str) -> dict[str, object]:
    with path.open("rb") as f:
        r = httpx.post(f"{srv.url}/v1/media", files={"file": (path.name, f)}, data=fields, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def stream_url(srv: RunningServer, media_name: str, **extra: object) -> str:
    r = httpx.post(f"{srv.url}/v1/stream-urls", json={"media_name": media_name, **extra})
    assert r.status_code == 200, r.text
    return r.json()["stream_url"]  # type: ignore[no-any-return]


def shell_stream(url: str, rate: int) -> np.ndarray:
    """Run the fetch script as mod_shell_stream does: through /bin/sh, raw s16le on stdout."""
    done = subprocess.run(
        ["/bin/sh", "-c", f"{FETCH} '{url}' -r {rate} -c 1"], capture_output=True, timeout=60
    )
    return np.frombuffer(done.stdout, dtype="<i2")


def best_lag_correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 2000) -> float:
    """Peak normalised cross-correlation, allowing an encoder/resampler delay."""
    n = min(len(a), len(b)) - max_lag
    a0 = a[:n].astype(float)
    best = 0.0
    for lag in range(0, max_lag, 1):
        seg = b[lag : lag + n].astype(float)
        if len(seg) < n:
            break
        c = float(np.dot(a0, seg) / (np.linalg.norm(a0) * np.linalg.norm(seg) + 1e-9))
        best = max(best, c)
        if best > 0.995:
            break
    return best


def test_wav_through_the_shell_stream_script_is_sample_exact(server: RunningServer, audio_dir: Path,
                                                             account_id: str) -> None:  # fmt: skip
    wav = tone(audio_dir / "g.wav", rate=8000, seconds=2)
    item = upload(server, wav, account_id=account_id)
    url = stream_url(server, str(item["media_name"]))
    assert url.startswith(f"http://127.0.0.1:{server.port}/single/") and url.endswith(".wav")
    got = shell_stream(url, 8000)
    assert np.array_equal(got, pcm(wav))


def test_shell_stream_resamples_to_the_channel_rate(server: RunningServer, audio_dir: Path) -> None:
    wav = tone(audio_dir / "g16.wav", rate=16000, seconds=2)
    item = upload(server, wav)
    got = shell_stream(stream_url(server, str(item["media_name"])), 8000)
    expected = pcm(wav, rate=8000)
    assert abs(len(got) - len(expected)) <= 8
    assert best_lag_correlation(expected, got, 40) > 0.99


def test_wav_headers_ranges_etag_and_head(server: RunningServer, audio_dir: Path) -> None:
    wav = tone(audio_dir / "r.wav", seconds=3)
    data = wav.read_bytes()
    item = upload(server, wav)
    url = stream_url(server, str(item["media_name"]))
    head = httpx.head(url)
    assert head.status_code == 200
    assert head.headers["content-type"] == "audio/wav"
    assert head.headers["content-length"] == str(len(data))
    assert head.headers["accept-ranges"] == "bytes"
    etag = head.headers["etag"]
    # curl asks for a range exactly as a user would.
    out = subprocess.run(["curl", "-sS", "-D", "-", "-r", "1000-4999", "-o", str(audio_dir / "part"), url],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert out.startswith("HTTP/1.1 206")
    assert "content-range: bytes 1000-4999/" + str(len(data)) in out.lower()
    assert (audio_dir / "part").read_bytes() == data[1000:5000]
    tail = httpx.get(url, headers={"range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == data[-100:]
    stale = httpx.get(url, headers={"range": "bytes=0-9", "if-range": '"other"'})
    assert stale.status_code == 200 and stale.content == data
    fresh = httpx.get(url, headers={"range": "bytes=0-9", "if-range": etag})
    assert fresh.status_code == 206 and fresh.content == data[:10]
    bad = httpx.get(url, headers={"range": f"bytes={len(data)}-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{len(data)}"


def test_mod_shout_request_gets_plain_mp3_over_http_1_1(server: RunningServer, audio_dir: Path) -> None:
    song = mp3(audio_dir / "m.mp3", rate=8000, seconds=2)
    item = upload(server, song)
    url = stream_url(server, str(item["media_name"]), protocol="shout")
    assert url.startswith(f"shout://127.0.0.1:{server.port}/single/") and url.endswith(".mp3")
    path = url.split(f":{server.port}", 1)[1]
    # mod_shout's request, byte for byte (reference 2.2): no Icy-MetaData, no Range.
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
               "User-Agent: FreeSWITCH(mod_shout)/1.0\r\nAccept: */*\r\n\r\n").encode()  # fmt: skip
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(request)
        raw = b""
        while b"\r\n\r\n" not in raw:
            raw += s.recv(65536)
        head, _, body = raw.partition(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        while len(body) < length:
            body += s.recv(65536)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-type: audio/mpeg" in head.lower()
    assert b"icy-metaint" not in head.lower()
    assert body == song.read_bytes()  # the stored bytes, unframed


def test_mpg123_and_ffmpeg_decode_the_mp3_url(server: RunningServer, audio_dir: Path) -> None:
    song = mp3(audio_dir / "d.mp3", rate=8000, seconds=2)
    item = upload(server, song)
    url = stream_url(server, str(item["media_name"]), protocol="shout").replace("shout://", "http://", 1)
    out = subprocess.run(
        ["mpg123", "-q", "-s", "-r", "8000", "-e", "s16", url], capture_output=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    via_mpg123 = np.frombuffer(out.stdout, dtype="<i2")
    local = subprocess.run(
        ["mpg123", "-q", "-s", "-r", "8000", "-e", "s16", str(song)], capture_output=True
    ).stdout
    assert np.array_equal(via_mpg123, np.frombuffer(local, dtype="<i2"))
    via_ffmpeg = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", url, "-f", "s16le", "-"], capture_output=True
    ).stdout
    decoded, expected = np.frombuffer(via_ffmpeg, dtype="<i2"), pcm(song)
    # Over HTTP ffmpeg does not trim the encoder's end padding (it cannot seek to learn the length).
    assert np.array_equal(decoded[: len(expected)], expected)
    assert len(decoded) - len(expected) < 576


def test_icy_metadata_only_when_asked_and_correctly_placed(server: RunningServer, audio_dir: Path) -> None:
    song = mp3(audio_dir / "icy.mp3", rate=16000, seconds=8, bitrate="32k")
    data = song.read_bytes()
    item = upload(server, song, name="Hold music")
    url = stream_url(server, str(item["media_name"]), protocol="shout").replace("shout://", "http://", 1)
    r = httpx.get(url, headers={"icy-metadata": "1"})
    metaint = int(r.headers["icy-metaint"])
    assert r.headers["icy-name"] == "Hold music"
    body, audio, titles = r.content, bytearray(), []
    while body:
        audio += body[:metaint]
        body = body[metaint:]
        if not body:
            break
        n = body[0] * 16
        if n:
            titles.append(body[1 : 1 + n].rstrip(b"\0").decode())
        body = body[1 + n :]
    assert bytes(audio) == data
    assert titles == ["StreamTitle='Hold music';"]
    # mpg123 asks for ICY itself and must decode the framed stream to the same audio.
    out = subprocess.run(["mpg123", "-q", "-s", url], capture_output=True, timeout=60).stdout
    local = subprocess.run(["mpg123", "-q", "-s", str(song)], capture_output=True).stdout
    assert out == local


def test_wav_stored_media_asked_as_mp3_is_encoded_once_and_cached(
    server: RunningServer, audio_dir: Path
) -> None:
    wav = tone(audio_dir / "w.wav", rate=8000, seconds=2)
    item = upload(server, wav)
    urls = [stream_url(server, str(item["media_name"]), format="mp3") for _ in range(6)]

    async def fetch_all() -> list[bytes]:
        async with httpx.AsyncClient(timeout=60) as client:
            responses = await asyncio.gather(*(client.get(u) for u in urls))  # concurrent first requests
        return [r.content for r in responses]

    bodies = asyncio.run(fetch_all())
    assert len(set(bodies)) == 1 and bodies[0][:2] in (b"\xff\xe3", b"\xff\xf3", b"ID")
    decoded = audio_dir / "back.mp3"
    decoded.write_bytes(bodies[0])
    assert best_lag_correlation(pcm(wav), pcm(decoded)) > 0.98
    transcodes = [
        line
        for line in server.log().splitlines()
        if '"variant transcoded"' in line and str(item["id"]) in line
    ]
    assert len(transcodes) == 1


def test_mp3_stored_media_asked_as_wav_at_16k(server: RunningServer, audio_dir: Path) -> None:
    song = mp3(audio_dir / "x.mp3", rate=8000, seconds=2)
    item = upload(server, song)
    url = stream_url(server, str(item["media_name"]), format="wav") + "?rate=16000"
    r = httpx.get(url)
    assert r.headers["content-type"] == "audio/wav"
    assert int(r.headers["content-length"]) == len(r.content)
    (audio_dir / "x16.wav").write_bytes(r.content)
    info = subprocess.run(["soxi", "-r", str(audio_dir / "x16.wav")], capture_output=True, text=True).stdout
    assert info.strip() == "16000"
    assert best_lag_correlation(pcm(song, rate=16000), pcm(audio_dir / "x16.wav"), 200) > 0.98
    assert httpx.get(stream_url(server, str(item["media_name"])) + "?rate=12345").status_code == 400


def test_a_replaced_revision_serves_nothing_stale(server: RunningServer, audio_dir: Path) -> None:
    item = upload(server, tone(audio_dir / "a.wav"))
    old_url = stream_url(server, str(item["media_name"]))
    new = tone(audio_dir / "b.wav", freq=880)
    httpx.put(f"{server.url}/v1/media/{item['id']}/content", content=new.read_bytes())
    r = httpx.get(old_url)
    assert r.status_code == 410 and "replaced" in r.json()["detail"]
    assert httpx.get(stream_url(server, str(item["media_name"]))).content == new.read_bytes()


@pytest.mark.parametrize(
    "mangle", [lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), lambda t: t[:10], lambda t: "x" * 72]
)
def test_forged_tokens_are_404(server: RunningServer, audio_dir: Path, mangle: object) -> None:
    item = upload(server, tone(audio_dir / "f.wav", seconds=0.5))
    url = stream_url(server, str(item["media_name"]))
    prefix, token, name = url.rsplit("/", 2)
    r = httpx.get(f"{prefix}/{mangle(token)}/{name}")  # type: ignore[operator]
    assert r.status_code == 404
    wrong_path = url.replace("/single/", "/continuous/")
    assert httpx.get(wrong_path).status_code == 404


def test_revoked_url_is_410_and_others_still_play(server: RunningServer, audio_dir: Path) -> None:
    item = upload(server, tone(audio_dir / "v.wav", seconds=0.5))
    first = stream_url(server, str(item["media_name"]))
    second = stream_url(server, str(item["media_name"]))
    assert first != second  # unique per request
    assert httpx.post(f"{server.url}/v1/stream-urls/revoke", json={"stream_url": first}).status_code == 204
    assert httpx.get(first).status_code == 410
    assert httpx.get(second).status_code == 200


def test_extant_is_continuous_with_the_same_body(server: RunningServer, audio_dir: Path) -> None:
    wav = tone(audio_dir / "moh.wav", seconds=1)
    item = upload(server, wav)
    url = stream_url(server, str(item["media_name"]), stream_type="extant")
    assert "/continuous/" in url
    assert httpx.get(url).content == wav.read_bytes()


@pytest.fixture(scope="module")
def second_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("second")
    srv = start_server({"MEDIA_MGR_DATABASE_URL": database_url, "MEDIA_MGR_DATA_DIR": str(data),
                        "MEDIA_MGR_URL_TTL": "2"}, data / "log")  # fmt: skip
    yield srv
    srv.stop()


def test_a_url_issued_by_one_instance_plays_on_another(server: RunningServer, second_server: RunningServer,
                                                       audio_dir: Path) -> None:  # fmt: skip
    wav = tone(audio_dir / "o.wav", seconds=1)
    item = upload(server, wav)
    url = stream_url(server, str(item["media_name"]))
    on_second = url.replace(f":{server.port}/", f":{second_server.port}/")
    assert httpx.get(on_second).content == wav.read_bytes()


def test_an_expired_url_is_410(second_server: RunningServer, audio_dir: Path) -> None:
    item = upload(second_server, tone(audio_dir / "e.wav", seconds=0.5))
    url = stream_url(second_server, str(item["media_name"]))  # MEDIA_MGR_URL_TTL=2
    assert httpx.get(url).status_code == 200
    time.sleep(3.1)
    r = httpx.get(url)
    assert r.status_code == 410 and r.json()["error"] == "gone"


def test_a_404_writes_nothing_through_the_fetch_script(server: RunningServer) -> None:
    url = f"{server.url}/single/{'A' * 72}/nothing.wav"
    done = subprocess.run(["/bin/sh", "-c", f"{FETCH} '{url}' -r 8000 -c 1"], capture_output=True, timeout=30)
    assert done.stdout == b""
    assert done.returncode != 0


@pytest.mark.parametrize(("body", "status"), [
    ({"media_name": "/0123456789abcdef0123456789abcdef/0123456789abcdef0123456789abcdef"}, 404),
    ({"media_name": "prompt://system_media"}, 400),
    ({"media_name": "prompt://system_media/no-such-prompt/en-us"}, 404),
    ({"media_name": "x", "stream_type": "store"}, 422),
    ({"media_name": "x", "format": "ogg"}, 422),
    ({"media_name": "x", "extra": 1}, 422),
    ({}, 422),
])  # fmt: skip
def test_stream_url_bad_requests(server: RunningServer, body: dict[str, object], status: int) -> None:
    r = httpx.post(f"{server.url}/v1/stream-urls", json=body)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error", "detail"}


def test_prompt_language_fallback_and_account_override(server: RunningServer, audio_dir: Path,
                                                       account_id: str) -> None:  # fmt: skip
    pid = f"vm-{account_id[:8]}"
    system_en = upload(server, tone(audio_dir / "1.wav", seconds=0.5), prompt_id=pid, language="en-us")
    system_fr = upload(server, tone(audio_dir / "2.wav", seconds=0.5), prompt_id=pid, language="fr")
    mine_en = upload(server, tone(audio_dir / "3.wav", seconds=0.5), prompt_id=pid, language="en-us",
                     account_id=account_id)  # fmt: skip

    def resolves(name: str) -> str:
        url = stream_url(server, name)
        etag = httpx.head(url).headers["etag"]
        return etag.strip('"').split("-")[0]

    assert resolves(f"prompt://system_media/{pid}/fr-ca") == system_fr["id"]  # fr-ca -> fr
    assert resolves(f"prompt://system_media/{pid}/de-de") == system_en["id"]  # -> default en-us
    assert resolves(f"prompt://system_media/{pid}") == system_en["id"]
    assert resolves(f"prompt://{account_id}/{pid}/en-us") == mine_en["id"]  # the account's own wins
    assert resolves(f"prompt://{account_id}/{pid}/fr-ca") == system_fr["id"]  # system fr beats account en
    assert resolves(f"/system_media/en-us/{pid}") == system_en["id"]
    assert (
        resolves(f"/account%2F{account_id[:2]}%2F{account_id[2:4]}%2F{account_id[4:]}/{mine_en['id']}")
        == mine_en["id"]
    )
