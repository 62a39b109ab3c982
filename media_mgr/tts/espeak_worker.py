"""Speak stdin with libespeak-ng through ctypes and write a WAV to stdout; one text per process.

Run by ``espeak.py`` as ``python -I -S espeak_worker.py LIBRARY DATA_DIR VOICE``: stdlib only, so it
starts fast and needs no package import. A process per text keeps espeak-ng's global state out of
the server, lets a time limit kill it, and makes a crash in the library cost one request only.
"""

from __future__ import annotations

import ctypes
import struct
import sys

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
POS_CHARACTER = 1
MAX_INPUT_BYTES = 64 * 1024

SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    """A 16-bit mono PCM WAV around ``pcm``."""
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, 1, 1,
                         rate, rate * 2, 2, 16, b"data", len(pcm))  # fmt: skip
    return header + pcm


def synthesize(library: str, data_dir: str, voice: str, text: bytes) -> bytes:
    lib = ctypes.CDLL(library)
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetSynthCallback.argtypes = [SynthCallback]
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]  # fmt: skip
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_dir.encode(), INITIALIZE_DONT_EXIT)
    if rate <= 0:
        raise SystemExit(f"espeak-ng: cannot initialise with data in {data_dir}")
    chunks: list[bytes] = []

    def collect(wav: ctypes._Pointer[ctypes.c_short], samples: int, _events: int | None) -> int:
        if wav and samples > 0:
            chunks.append(ctypes.string_at(wav, samples * 2))
        return 0

    callback = SynthCallback(collect)
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise SystemExit(f"espeak-ng: no voice {voice!r}")
    buffer = ctypes.create_string_buffer(text)
    status = lib.espeak_Synth(buffer, len(text) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
    if status != 0:
        raise SystemExit(f"espeak-ng: synthesis failed ({status})")
    lib.espeak_Synchronize()
    lib.espeak_Terminate()
    return wav_bytes(b"".join(chunks), rate)


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: espeak_worker.py LIBRARY DATA_DIR VOICE < text", file=sys.stderr)
        return 2
    text = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    if len(text) > MAX_INPUT_BYTES:
        print("espeak-ng: text too long", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(synthesize(argv[1], argv[2], argv[3], text))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
