"""A WAV item asked for as MP3 (mod_shout's shout:// URL) plays exactly the WAV's length, however it is
fetched: mod_shout's plain GET, mpg123 asking for ICY metadata, /continuous/; MP3 uploads go out as
they came. Decoded by libmpg123 (gapless by default, as mod_shout links it) and by ffmpeg.

A real mod_shout played a 5.000 s WAV as 5.184 s while the MP3 variant had no Info tag."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest

from servers import RunningServer
from sounds import raw_mp3, tone


def upload(srv: RunningServer, path: Path) -> dict[str, object]:
    with path.open("rb") as f:
        r = httpx.post(f"{srv.url}/v1/media", files={"file": (path.name, f)}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def shout_url(srv: RunningServer, media_name: str, stream_type: str = "new") -> str:
    """What a media_req with Protocol shout answers, as the http:// mod_shout turns it into."""
    body = {"media_name": media_name, "protocol": "shout", "stream_type": stream_type}
    r = httpx.post(f"{srv.url}/v1/stream-urls", json=body)
    assert r.status_code == 200, r.text
    url: str = r.json()["stream_url"]
    assert url.startswith("shout://")
    return url.replace("shout://", "http://", 1)


def mod_shout_get(url: str) -> bytes:
    r = httpx.get(url, headers={"User-Agent": "FreeSWITCH(mod_shout)/1.0", "Accept": "*/*"}, timeout=60)
    assert r.status_code == 200
    assert "icy-metaint" not in r.headers
    return r.content


def mpg123(source: str | bytes) -> np.ndarray:
    """libmpg123, gapless: a URL (it asks for ICY metadata itself) or bytes fed as a stream."""
    if isinstance(source, bytes):
        done = subprocess.run(["mpg123", "-q", "-s", "-"], input=source, capture_output=True, timeout=60)
    else:
        done = subprocess.run(["mpg123", "-q", "-s", source], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return np.frombuffer(done.stdout, dtype="<i2")


def ffmpeg(source: str) -> np.ndarray:
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", source, "-f", "s16le", "-"], capture_output=True,
                         check=True, timeout=60).stdout  # fmt: skip
    return np.frombuffer(out, dtype="<i2")


def wav_samples(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    x, y = a.astype(float), b.astype(float)
    return float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-9))


@pytest.mark.parametrize(("rate", "seconds"), [(8000, 5.0), (16000, 1.2345), (44100, 3.0)])
def test_wav_item_as_mp3_plays_the_exact_length_on_every_path(
    server: RunningServer, audio_dir: Path, rate: int, seconds: float
) -> None:
    wav = tone(audio_dir / "prompt.wav", rate=rate, seconds=seconds)
    source = wav_samples(wav)
    item = upload(server, wav)
    single = shout_url(server, str(item["media_name"]))
    body = mod_shout_get(single)
    decoded = mpg123(body)
    assert len(decoded) == len(source)  # 5.000 s plays as 5.000 s, not 5.184 s
    assert correlation(decoded, source) > 0.98  # lossy, but the same sound in the same place
    assert len(ffmpeg(single)) == len(source)
    assert np.array_equal(mpg123(single), decoded)  # through ICY framing: the tag survives it
    continuous = shout_url(server, str(item["media_name"]), "extant")
    assert "/continuous/" in continuous
    assert mod_shout_get(continuous) == body  # one item's body; looping it is FreeSWITCH's job


def test_uploaded_mp3_goes_out_untouched_with_or_without_its_tag(
    server: RunningServer, audio_dir: Path
) -> None:
    tagged = audio_dir / "tagged.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(tone(audio_dir / "t.wav", rate=16000, seconds=2)),
                    "-c:a", "libmp3lame", "-b:a", "32k", str(tagged)], check=True)  # fmt: skip
    bare = audio_dir / "bare.mp3"
    raw_mp3(bare, rate=8000, seconds=2)  # as mod_shout's LAME sends it: no Info tag
    for path in (tagged, bare):
        item = upload(server, path)
        assert item["format"] == "mp3"
        assert mod_shout_get(shout_url(server, str(item["media_name"]))) == path.read_bytes()
    assert len(mpg123(tagged.read_bytes())) == 32000  # its own tag: exactly the 2 s it was made from
