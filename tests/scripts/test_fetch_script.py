"""scripts/fetch_remote_audio.sh run the way mod_shell_stream runs it: ``/bin/sh -c "<path> 'URL'
-r RATE -c 1"``, stdout compared sample by sample with what the served audio holds."""

from __future__ import annotations

import http.server
import shlex
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from media_mgr.audio.wav import WavFormat, wav_header

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fetch_remote_audio.sh"


@dataclass
class Served:
    """What the test server answers per path, and every request target it saw."""

    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    truncated: set[str] = field(default_factory=set)
    seen: list[str] = field(default_factory=list)
    base: str = ""


@pytest.fixture
def served() -> Iterator[Served]:
    state = Served()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append(self.path)
            path = self.path.split("?", 1)[0]
            if path not in state.files:
                self.send_error(404)
                return
            content_type, body = state.files[path]
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body) * (2 if path in state.truncated else 1)))
            self.end_headers()
            self.wfile.write(body)
            if path in state.truncated:
                self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def shell_stream(url: str, *options: str) -> subprocess.CompletedProcess[bytes]:
    """What mod_shell_stream does: ``system("<path> -r <rate> -c 1")`` with the dialplan's quoting."""
    command = f"{SCRIPT} {shlex.quote(url)} {' '.join(options or ('-r', '8000', '-c', '1'))}"
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, timeout=60)


def tone(rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    sweep = np.sin(2 * np.pi * (200 * t + 1600 * t**2 / (2 * seconds)))
    return np.round((0.3 * np.sin(2 * np.pi * 440 * t) + 0.3 * sweep) * 32767).astype("<i2")


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n].astype(float), b[:n].astype(float))[0, 1])


def aligned_correlation(a: np.ndarray, b: np.ndarray, max_lag: int) -> float:
    """Correlation of ``a`` and ``b`` after shifting one by the lag (up to ``max_lag``) that fits best."""
    x, y = a.astype(float), b.astype(float)
    size = len(x) + len(y)
    cross = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(y, size)), size)
    lag = int(np.argmax(np.concatenate([cross[: max_lag + 1], cross[-max_lag:]])))
    lag = lag if lag <= max_lag else lag - 2 * max_lag - 1
    return correlation(x[lag:], y) if lag >= 0 else correlation(x, y[-lag:])


def wav(samples: np.ndarray, rate: int) -> bytes:
    return wav_header(samples.nbytes, rate, 1) + samples.tobytes()


def test_same_rate_wav_comes_out_byte_identical(served: Served) -> None:
    pcm = tone(8000)
    served.files["/media/x.wav"] = ("audio/wav", wav(pcm, 8000))
    run = shell_stream(served.base + "/media/x.wav")
    assert run.returncode == 0, run.stderr
    assert run.stdout == pcm.tobytes()


def test_options_in_any_order_and_defaults(served: Served) -> None:
    pcm = tone(8000)
    served.files["/x.wav"] = ("audio/wav", wav(pcm, 8000))
    assert shell_stream(served.base + "/x.wav", "-c", "1", "-r", "8000").stdout == pcm.tobytes()
    assert shell_stream(served.base + "/x.wav", " ").stdout == pcm.tobytes()  # no options: 8000 Hz mono


@pytest.mark.parametrize(("served_rate", "asked_rate"), [(16000, 8000), (8000, 16000), (44100, 8000)])
def test_other_rates_are_resampled_to_the_channel_rate(
    served: Served, served_rate: int, asked_rate: int
) -> None:
    served.files["/r.wav"] = ("audio/wav", wav(tone(served_rate), served_rate))
    run = shell_stream(served.base + "/r.wav", "-r", str(asked_rate), "-c", "1")
    assert run.returncode == 0, run.stderr
    out = np.frombuffer(run.stdout, dtype="<i2")
    assert len(out) == asked_rate  # one second
    assert correlation(out, tone(asked_rate)) > 0.999


def test_mulaw_wav_becomes_s16(served: Served) -> None:
    codes = np.arange(256, dtype=np.uint8)
    served.files["/u.wav"] = ("audio/wav", wav_header(256, 8000, 1, WavFormat.MULAW) + codes.tobytes())
    run = shell_stream(served.base + "/u.wav")
    assert len(run.stdout) == 512  # 16-bit out, not 8-bit mu-law (the wiki script's bug)
    expected = subprocess.run(
        [
            "sox",
            "-q",
            "-t",
            "ul",
            "-r",
            "8000",
            "-",
            "-t",
            "raw",
            "-e",
            "signed-integer",
            "-b",
            "16",
            "-L",
            "-",
        ],
        input=codes.tobytes(),
        capture_output=True,
        check=True,
    ).stdout
    assert run.stdout == expected


@pytest.mark.parametrize(
    ("path", "content_type", "id3"),
    [
        ("/p.mp3", "audio/mpeg", True),
        ("/noext", "audio/mpeg", False),
        ("/n", "", True),
        ("/n.wav", "", False),
    ],
)
def test_mp3_is_decoded_whatever_the_url_says(
    served: Served, tmp_path: Path, path: str, content_type: str, id3: bool
) -> None:
    mp3 = tmp_path / "p.mp3"
    src = tmp_path / "p.wav"
    src.write_bytes(wav(tone(16000, 2.0), 16000))
    tag = [] if id3 else ["-id3v2_version", "0", "-write_xing", "0"]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(src), "-c:a", "libmp3lame", "-b:a", "32k", *tag, str(mp3)],
        check=True,
    )
    assert (mp3.read_bytes()[:3] == b"ID3") is id3
    served.files[path] = (content_type, mp3.read_bytes())
    run = shell_stream(served.base + path)
    assert run.returncode == 0, run.stderr
    out = np.frombuffer(run.stdout, dtype="<i2")
    reference = np.frombuffer(
        subprocess.run(
            ["mpg123", "-q", "-s", "-r", "8000", str(mp3)], check=True, capture_output=True
        ).stdout,
        dtype="<i2",
    )
    assert abs(len(out) - len(reference)) < 1200  # mpg123 trims the encoder delay, sox (libmad) does not
    assert aligned_correlation(out, reference, 1200) > 0.99


def test_404_gives_empty_stdout_and_failure(served: Served) -> None:
    run = shell_stream(served.base + "/missing.wav")
    assert run.returncode != 0
    assert run.stdout == b""
    assert b"404" in run.stderr


def test_connection_dropped_mid_body_gives_empty_stdout(served: Served) -> None:
    served.files["/cut.wav"] = ("audio/wav", wav(tone(8000), 8000))
    served.truncated.add("/cut.wav")
    run = shell_stream(served.base + "/cut.wav")
    assert run.returncode != 0
    assert run.stdout == b""


def test_unreachable_server_gives_empty_stdout() -> None:
    with socket_on_free_port() as port:
        run = shell_stream(f"http://127.0.0.1:{port}/x.wav")
    assert run.returncode != 0
    assert run.stdout == b""


def test_not_audio_gives_empty_stdout(served: Served) -> None:
    served.files["/page.html"] = ("text/html", b"<html>hello</html>")
    run = shell_stream(served.base + "/page.html")
    assert run.returncode != 0
    assert run.stdout == b""
    served.files["/fake.wav"] = ("audio/wav", b"RIFF\x00\x00\x00\x00WAVEjunk")
    assert shell_stream(served.base + "/fake.wav").stdout == b""


def test_wav_announcing_zero_data_bytes_fails_loudly(served: Served) -> None:
    pcm = tone(8000)
    served.files["/zero.wav"] = ("audio/wav", wav_header(0, 8000, 1) + pcm.tobytes())
    run = shell_stream(served.base + "/zero.wav")
    assert run.returncode != 0
    assert run.stdout == b""
    assert b"no audio" in run.stderr


def test_query_with_ampersand_and_semicolon_reaches_the_server_intact(served: Served) -> None:
    pcm = tone(8000)
    served.files["/q.wav"] = ("audio/wav", wav(pcm, 8000))
    target = "/q.wav?a=1&b=2;c=3&d=$HOME&e=`x`"
    run = shell_stream(served.base + target)
    assert run.returncode == 0, run.stderr
    assert served.seen == [target]
    assert run.stdout == pcm.tobytes()


@pytest.mark.parametrize("options", [("-r", "abc"), ("-r", "0"), ("-c",), ("-r", "8000", "-c", "x")])
def test_bad_options_fail_without_output(served: Served, options: tuple[str, ...]) -> None:
    served.files["/x.wav"] = ("audio/wav", wav(tone(8000), 8000))
    run = shell_stream(served.base + "/x.wav", *options)
    assert run.returncode != 0
    assert run.stdout == b""
    assert served.seen == []


def test_non_http_url_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "x.wav"
    target.write_bytes(wav(tone(8000), 8000))
    run = shell_stream(f"file://{target}")
    assert run.returncode != 0
    assert run.stdout == b""


def test_script_is_executable_posix_sh() -> None:
    assert SCRIPT.stat().st_mode & 0o111
    assert SCRIPT.read_text().startswith("#!/bin/sh\n")
    subprocess.run(["sh", "-n", str(SCRIPT)], check=True)


class socket_on_free_port:
    """A port nobody listens on, for as long as the context lasts (bound, never listening)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        port: int = self.sock.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
