"""The local engine: eSpeak NG, from the ``espeakng-loader`` wheel or Debian's ``espeak-ng``.

The wheel carries libespeak-ng and its voice data, so ``pip install`` alone gives speech; it is
driven through ctypes in a short-lived worker process (``espeak_worker.py``). Without the wheel,
Debian's ``espeak-ng`` binary does the same job. Either way the text goes to the process on stdin,
never on a command line and never through a shell, with SSML and markup off, and the process is
killed when the service's time limit cancels the synthesis.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from media_mgr.audio.wav import WavError, parse_wav_header, wav_header
from media_mgr.config import Settings
from media_mgr.tts.engine import TtsFailed, UnsupportedSpeech
from media_mgr.tts.speech import Speech

Backend = Literal["library", "binary"]
WORKER: Final = Path(__file__).with_name("espeak_worker.py")
# Kazoo's voices as eSpeak NG variants (``voices/!v``).
VARIANTS: Final = {"male": "m3", "female": "f3"}
# Language codes whose eSpeak NG voice goes by another name.
ALIASES: Final = {"zh": "cmn", "no": "nb"}
_DATA_AT = re.compile(r"Data at:\s*(\S+)")


@dataclass(frozen=True)
class EspeakSetup:
    """How to run eSpeak NG here: the command before the voice, and the voice data directory."""

    backend: Backend
    command: tuple[str, ...]
    data_dir: Path

    def argv(self, voice: str) -> tuple[str, ...]:
        """The whole command for one text in ``voice``."""
        return (*self.command, "-v", voice) if self.backend == "binary" else (*self.command, voice)


def find_espeak(prefer: Literal["auto", "library", "binary"] = "auto") -> EspeakSetup:
    """The wheel's library when installed (``auto`` and ``library``), else Debian's binary.

    Raises ``RuntimeError`` saying what is missing.
    """
    if prefer in ("auto", "library") and importlib.util.find_spec("espeakng_loader") is not None:
        import espeakng_loader  # type: ignore[import-untyped]

        library = str(espeakng_loader.get_library_path())
        data = Path(espeakng_loader.get_data_path())
        command = (sys.executable, "-I", "-S", str(WORKER), library, str(data))
        return EspeakSetup("library", command, data)
    if prefer in ("auto", "binary"):
        binary = shutil.which("espeak-ng")
        if binary is not None:
            return EspeakSetup("binary", (binary, "--stdout", "--stdin", "-b", "1"), _binary_data_dir(binary))
    wanted = {"auto": "the espeakng-loader package or Debian's espeak-ng", "library": "espeakng-loader",
              "binary": "Debian's espeak-ng"}[prefer]  # fmt: skip
    raise RuntimeError(f"eSpeak NG is not installed: install {wanted}")


def _binary_data_dir(binary: str) -> Path:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False)
    match = _DATA_AT.search(out.stdout)
    if match is None:
        raise RuntimeError(f"{binary} --version does not say where its data is")
    return Path(match.group(1))


def voice_names(data_dir: Path) -> dict[str, str]:
    """Lower-cased language code -> eSpeak NG voice name, from the data's ``lang/`` tree."""
    return {path.name.lower(): path.name for path in (data_dir / "lang").rglob("*") if path.is_file()}


class EspeakEngine:
    name = "espeak"

    def __init__(self, setup: EspeakSetup) -> None:
        self.setup = setup
        self.voices = voice_names(setup.data_dir)
        if not self.voices:
            raise RuntimeError(f"no eSpeak NG languages under {setup.data_dir}")

    @classmethod
    def from_settings(cls, settings: Settings) -> EspeakEngine:
        return cls(find_espeak(settings.tts_espeak_backend))

    def voice_for(self, speech: Speech) -> str:
        """``en-us`` -> ``en-US+f3``: the exact language, else its primary subtag (``fr-fr`` -> ``fr``)."""
        primary = speech.language.split("-", 1)[0]
        for code in (speech.language, primary, ALIASES.get(primary)):
            if code is not None and code in self.voices:
                return f"{self.voices[code]}+{VARIANTS[speech.voice]}"
        raise UnsupportedSpeech(f"tts language {speech.language!r} is not spoken by engine {self.name}")

    def check(self, speech: Speech) -> None:
        self.voice_for(speech)

    async def synthesize(self, speech: Speech) -> bytes:
        out = await _run(self.setup.argv(self.voice_for(speech)), speech.text.encode())
        return _clean_wav(out)

    async def aclose(self) -> None:
        return None


async def _run(argv: tuple[str, ...], stdin: bytes) -> bytes:
    """Run without a shell, text on stdin; killed if cancelled (the service's time limit)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await proc.communicate(stdin)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        raise
    if proc.returncode != 0:
        lines = err.decode("utf-8", "replace").strip().splitlines()
        raise TtsFailed(f"espeak-ng failed ({lines[-1] if lines else f'exit {proc.returncode}'})")
    return out


def _clean_wav(data: bytes) -> bytes:
    """The engine's WAV with exact sizes (the binary writes open-ended ones when streaming)."""
    try:
        info = parse_wav_header(data)
    except WavError as exc:
        raise TtsFailed(f"espeak-ng wrote no WAV: {exc.detail}") from None
    end = len(data) if info.data_size is None else min(len(data), info.data_offset + info.data_size)
    pcm = data[info.data_offset : end]
    pcm = pcm[: len(pcm) - len(pcm) % info.block_align]
    if info.bits != 16 or info.channels != 1 or not pcm:
        raise TtsFailed("espeak-ng produced no audio")
    return wav_header(len(pcm), info.rate, 1) + pcm
