"""ICY interleaving lands metadata every exactly metaint bytes, strips back losslessly, and real
ICY clients (mpg123, ffmpeg) decode our framed MP3 to the same samples as the clean file."""

from __future__ import annotations

import http.server
import random
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from media_mgr.audio.icy import IcyInterleaver, IcyStripper, interleave, metadata_block, strip_icy

METAINT = 1000


def frame(audio: bytes, metaint: int, title: str, chunk: int) -> bytes:
    framer = IcyInterleaver(metaint, title)
    return b"".join(framer.feed(audio[i : i + chunk]) for i in range(0, len(audio), chunk))


def test_metadata_block_is_length_byte_then_16_byte_blocks() -> None:
    block = metadata_block("abc")
    payload = b"StreamTitle='abc';"
    assert block[0] == 2
    assert len(block) == 1 + 32
    assert block[1:] == payload + b"\x00" * (32 - len(payload))
    exact = metadata_block("x" * (32 - len("StreamTitle='';")))
    assert exact[0] == 2
    assert b"\x00" not in exact[1:]


@pytest.mark.parametrize("chunk", [1, 7, METAINT - 1, METAINT, METAINT + 1, 3 * METAINT + 5, 65536])
@pytest.mark.parametrize("length", [0, 1, METAINT - 1, METAINT, 5 * METAINT, 5 * METAINT + 123])
def test_interleave_then_strip_is_lossless_for_any_chunking(chunk: int, length: int) -> None:
    audio = random.Random(length).randbytes(length)
    framed = frame(audio, METAINT, "Title", chunk)
    blocks = length // METAINT
    meta = len(metadata_block("Title")) if blocks else 0
    assert len(framed) == length + meta + max(blocks - 1, 0)  # no padding, ever

    stripper = IcyStripper(METAINT)
    pieces = [stripper.feed(framed[i : i + chunk + 3]) for i in range(0, len(framed), chunk + 3)]
    assert b"".join(pieces) == audio
    assert stripper.titles == (["Title"] if blocks else [])
    assert stripper.at_block_boundary


def test_fields_sit_after_every_exactly_metaint_audio_bytes() -> None:
    audio = bytes(range(256)) * 20  # 5120 bytes: 5 full blocks and a partial one
    framed = frame(audio, METAINT, "T", 333)
    first = metadata_block("T")
    assert framed[:METAINT] == audio[:METAINT]
    assert framed[METAINT : METAINT + len(first)] == first
    pos = METAINT + len(first)
    for k in range(1, 5):
        assert framed[pos : pos + METAINT] == audio[k * METAINT : (k + 1) * METAINT]
        assert framed[pos + METAINT] == 0
        pos += METAINT + 1
    assert framed[pos:] == audio[5 * METAINT :]  # the last partial block just ends


def test_changed_title_is_sent_once_then_zero_bytes() -> None:
    framer = IcyInterleaver(10, "one")
    out = framer.feed(b"a" * 10)
    framer.set_title("one")  # unchanged: nothing new to send
    out += framer.feed(b"b" * 10)
    framer.set_title("two")
    out += framer.feed(b"c" * 25)
    first, second = metadata_block("one"), metadata_block("two")
    expected = b"a" * 10 + first + b"b" * 10 + b"\x00" + b"c" * 10 + second + b"c" * 10 + b"\x00" + b"c" * 5
    assert out == expected
    audio, titles = strip_icy(out, 10)
    assert audio == b"a" * 10 + b"b" * 10 + b"c" * 25
    assert titles == ["one", "two"]


def test_quotes_and_control_characters_cannot_break_out_of_the_title() -> None:
    block = metadata_block("it's';StreamUrl='http://evil/';\x00\n")
    assert b"evil/'" not in block
    assert b"\n" not in block
    _, titles = strip_icy(b"x" * 4 + block, 4)
    assert titles == ["it\u2019s\u2019;StreamUrl=\u2019http://evil/\u2019;"]


def test_long_title_is_cut_to_fit_255_blocks_on_a_character_boundary() -> None:
    block = metadata_block("é" * 5000)
    assert block[0] == 255
    assert len(block) == 1 + 255 * 16
    _, titles = strip_icy(b"x" + block, 1)
    assert set(titles[0]) == {"é"}
    assert len(titles[0]) > 2000


def test_strip_refuses_a_stream_cut_inside_metadata() -> None:
    framed = frame(b"z" * 20, 10, "cut", 20)
    with pytest.raises(ValueError, match="inside a metadata field"):
        strip_icy(framed[:15], 10)


def test_bad_metaint_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        IcyInterleaver(0, "x")
    with pytest.raises(ValueError, match="positive"):
        IcyStripper(-1)


async def test_async_interleave_matches_the_sans_io_framer() -> None:
    audio = random.Random(5).randbytes(7777)

    async def source() -> AsyncIterator[bytes]:
        for i in range(0, len(audio), 500):
            yield audio[i : i + 500]

    framed = b"".join([chunk async for chunk in interleave(source(), 1024, "async")])
    assert framed == frame(audio, 1024, "async", 4096)
    assert strip_icy(framed, 1024) == (audio, ["async"])


@pytest.fixture(scope="module")
def mp3_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("icy") / "tone.mp3"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=4:sample_rate=8000",
         "-ac", "1", "-c:a", "libmp3lame", "-b:a", "16k", "-id3v2_version", "0", "-write_xing", "0", str(path)],
        check=True,
    )  # fmt: skip
    return path


def decode(tool: str, source: str) -> bytes:
    if tool == "mpg123":
        args = ["mpg123", "-q", "-s", source]
    else:
        args = ["ffmpeg", "-v", "error", "-i", source, "-f", "s16le", "-"]
    return subprocess.run(args, check=True, capture_output=True).stdout


def test_stripped_mp3_decodes_with_mpg123_like_the_original(mp3_file: Path, tmp_path: Path) -> None:
    clean = mp3_file.read_bytes()
    framed = frame(clean, 2048, "prompt", 777)
    audio, titles = strip_icy(framed, 2048)
    assert titles == ["prompt"]
    restored = tmp_path / "restored.mp3"
    restored.write_bytes(audio)
    pcm = decode("mpg123", str(restored))
    assert len(pcm) >= 4 * 8000 * 2
    assert pcm == decode("mpg123", str(mp3_file))
    assert max(abs(int.from_bytes(pcm[i : i + 2], "little", signed=True)) for i in range(0, 4000, 2)) > 1000


@pytest.fixture
def icy_server(mp3_file: Path) -> Iterator[str]:
    """Serves the MP3 framed with icy-metaint 1000 and a title change after the fifth block."""
    clean = mp3_file.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            framer = IcyInterleaver(1000, "first 'title'")
            body = framer.feed(clean[:4500])
            framer.set_title("second")
            body += framer.feed(clean[4500:])
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("icy-metaint", "1000")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tone.mp3"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("tool", ["mpg123", "ffmpeg"])
def test_icy_clients_decode_our_framing_sample_exact(tool: str, icy_server: str, mp3_file: Path) -> None:
    assert decode(tool, icy_server) == decode(tool, str(mp3_file))


def test_mpg123_reads_both_titles(icy_server: str) -> None:
    run = subprocess.run(["mpg123", "-v", "-t", icy_server], check=True, capture_output=True)
    log = run.stderr.decode(errors="replace")
    assert "ICY-META: StreamTitle='first \u2019title\u2019';" in log
    assert "ICY-META: StreamTitle='second';" in log


@pytest.mark.parametrize("size", [0, 1, 15999, 16000, 16001, 32000, 100_000])
def test_framed_length_is_what_interleaving_produces(size: int) -> None:
    from media_mgr.audio.icy import IcyInterleaver, framed_length

    audio = bytes(size)
    assert len(IcyInterleaver(16000, "Hold music").feed(audio)) == framed_length(size, 16000, "Hold music")
