"""WAV/MP3 conversion through an ffmpeg subprocess, streaming, with memory bounded by pipe buffers.

The ffmpeg is the static binary the ``imageio-ffmpeg`` package ships (no system ffmpeg needed; it
also starts faster than Debian's: a 10 s 8 kHz WAV to MP3 took 80 ms against 230 ms), else the
system's ``ffmpeg``. ``IMAGEIO_FFMPEG_EXE`` names another binary.

One ffmpeg per conversion: a task feeds its stdin (awaiting ``drain``) while the caller pulls its
stdout, so a slow consumer stalls ffmpeg and ffmpeg stalls the source; nothing grows. Closing or
cancelling the consumer kills ffmpeg and reaps it. Concurrency is bounded by a semaphore the caller
owns (no module state). WAV out is always 16-bit PCM: ffmpeg makes raw ``s16le`` and we write the
header, because ffmpeg cannot seek back in a pipe to fix RIFF sizes. ``transcoded`` gives the exact
final bytes and size (what a cache stores and serves with Content-Length) through a scratch file.

MP3 made by ``transcoded`` starts with a Xing/Info frame carrying LAME's encoder delay and padding,
so a gapless decoder (libmpg123, as mod_shout links it; ffmpeg) plays exactly the source's samples:
without it a 5.000 s WAV played as 5.184 s (delay, padding and the last frame's fill). The tag's
values are known only at the end, so ffmpeg writes that MP3 into the scratch file itself (a pipe
cannot be seeked back to; its muxer then leaves the tag out): memory stays bounded, and nothing is
served before the whole variant is made and stored anyway. ``transcode`` (a pipe) has no tag.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from media_mgr.audio.info import AudioFormat
from media_mgr.audio.mpeg import id3v2_length, parse_header
from media_mgr.audio.wav import WavError, parse_wav_header, wav_header
from media_mgr.errors import Unavailable, Unprocessable

OutFormat = Literal["wav", "mp3", "s16le"]
"""``wav``: streaming header (sizes 0xFFFFFFFF) + PCM; ``s16le``: bare PCM; ``mp3``: CBR MP3."""

READ_BYTES = 64 * 1024
_SNIFF_BYTES = 256 * 1024
_STDERR_TAIL = 4096
# MPEG audio sample rates by version bits (3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5) and rate index.


class TranscodeError(Unprocessable):
    """ffmpeg could not convert the input; ``stderr`` holds the tail of what it said."""

    def __init__(self, detail: str, stderr: str = "") -> None:
        super().__init__(f"{detail}: {stderr.strip()}" if stderr.strip() else detail)
        self.stderr = stderr


def mp3_bitrate(rate: int, channels: int) -> int:
    """CBR kbit/s for a rate: 16 at 8 kHz mono (what mod_shout records), 32 at 16 kHz, 64 from 22.05 kHz."""
    if rate < 11025:
        per_channel = 16
    elif rate < 16000:
        per_channel = 24
    elif rate < 22050:
        per_channel = 32
    else:
        per_channel = 64
    return per_channel * min(channels, 2)


def sniff_format(head: bytes, src_format: AudioFormat) -> tuple[int, int] | None:
    """(rate, channels) from the start of a WAV or MP3, or None if ``head`` does not show them yet."""
    if src_format == "wav":
        try:
            info = parse_wav_header(head)
        except WavError:
            return None
        return info.rate, info.channels
    for i in range(id3v2_length(head), len(head) - 3):
        if head[i] == 0xFF and (header := parse_header(head[i : i + 4])):
            return header.sample_rate, header.channels
    return None


@functools.cache
def ffmpeg_exe() -> str:
    """The ffmpeg to run: imageio-ffmpeg's bundled binary, else the system's; ``Unavailable`` if none."""
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if found is None:
            raise Unavailable("no ffmpeg: pip install imageio-ffmpeg, or install the system ffmpeg") from None
        return found


def ffmpeg_args(
    src_format: AudioFormat, dst_format: OutFormat, rate: int, channels: int, output: Path | None = None
) -> list[str]:
    """The ffmpeg command line: ``src_format`` on stdin, ``dst_format`` at ``rate``/``channels`` on stdout,
    or into the file ``output`` (MP3 then gets its Info tag: ffmpeg seeks back to fill it in)."""
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-f", src_format, "-i", "pipe:0"]
    args += ["-map", "0:a:0", "-map_metadata", "-1", "-ac", str(channels), "-ar", str(rate)]
    target = ["-y", str(output)] if output is not None else ["pipe:1"]
    if dst_format == "mp3":
        kbps = mp3_bitrate(rate, channels)
        xing = "0" if output is None else "1"
        args += ["-c:a", "libmp3lame", "-b:a", f"{kbps}k", "-write_xing", xing, "-id3v2_version", "0"]
        return [*args, "-f", "mp3", *target]
    return [*args, "-c:a", "pcm_s16le", "-f", "s16le", *target]


async def transcode(
    source: AsyncIterable[bytes],
    src_format: AudioFormat,
    dst_format: OutFormat,
    rate: int | None,
    channels: int | None = 1,
    *,
    limit: asyncio.Semaphore | None = None,
    read_bytes: int = READ_BYTES,
) -> AsyncGenerator[bytes, None]:
    """Convert ``source`` chunk by chunk; ``rate``/``channels`` None keep the source's.

    Raises ``TranscodeError`` when ffmpeg fails (the output so far is then incomplete) and
    ``Unavailable`` when ffmpeg is missing; an error from ``source`` itself propagates as it is.
    Use ``contextlib.aclosing`` so that stopping early kills ffmpeg at once.
    """
    async with _gate(limit):
        chunks = aiter(source)
        head, rate, channels = await _resolve(chunks, src_format, rate, channels)
        proc, feeder, stderr = await _start(ffmpeg_args(src_format, dst_format, rate, channels), head, chunks)
        stdout = proc.stdout
        assert stdout is not None
        try:
            prefix = wav_header(None, rate, channels) if dst_format == "wav" else b""
            while chunk := await stdout.read(read_bytes):
                yield prefix + chunk
                prefix = b""
            await _finish(proc, feeder, stderr)
            if prefix:
                yield prefix
        finally:
            await _stop(proc, stdout, feeder, stderr)


async def encode_mp3_file(
    source: AsyncIterable[bytes],
    src_format: AudioFormat,
    rate: int | None,
    channels: int | None,
    path: Path,
    *,
    limit: asyncio.Semaphore | None = None,
) -> None:
    """Encode all of ``source`` as MP3 into ``path``, with the Info tag (encoder delay and padding)
    that only a seekable output can get; errors as ``transcode``'s."""
    async with _gate(limit):
        chunks = aiter(source)
        head, rate, channels = await _resolve(chunks, src_format, rate, channels)
        args = ffmpeg_args(src_format, "mp3", rate, channels, output=path)
        proc, feeder, stderr = await _start(args, head, chunks, piped=False)
        try:
            await _finish(proc, feeder, stderr)
        finally:
            await _stop(proc, None, feeder, stderr)


def _gate(limit: asyncio.Semaphore | None) -> contextlib.AbstractAsyncContextManager[Any]:
    return limit if limit is not None else contextlib.nullcontext()


async def _start(
    args: list[str], head: Iterable[bytes], chunks: AsyncIterator[bytes], *, piped: bool = True
) -> tuple[asyncio.subprocess.Process, asyncio.Task[None], asyncio.Task[bytes]]:
    """Run ffmpeg with a task feeding its stdin and one keeping the tail of its stderr."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE if piped else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise Unavailable(f"ffmpeg is not installed ({exc.filename})") from exc
    assert proc.stderr is not None
    return proc, asyncio.create_task(_feed(proc, head, chunks)), asyncio.create_task(_tail(proc.stderr))


async def _finish(
    proc: asyncio.subprocess.Process, feeder: asyncio.Task[None], stderr: asyncio.Task[bytes]
) -> None:
    """The source is all in and ffmpeg's output all out: did it succeed?"""
    await feeder
    if await proc.wait() != 0:
        raise TranscodeError("ffmpeg failed", (await stderr).decode(errors="replace"))


async def _resolve(
    chunks: AsyncIterator[bytes], src_format: AudioFormat, rate: int | None, channels: int | None
) -> tuple[list[bytes], int, int]:
    """Fill in an unknown rate or channel count from the source's first bytes (returned for feeding)."""
    head: list[bytes] = []
    if rate is not None and channels is not None:
        return head, rate, channels
    found, seen = None, 0
    while found is None and seen < _SNIFF_BYTES:
        chunk = await anext(chunks, None)
        if chunk is None:
            break
        head.append(chunk)
        seen += len(chunk)
        found = sniff_format(b"".join(head), src_format)
    if found is None:
        raise TranscodeError(f"cannot tell the sample rate and channels of this {src_format} input")
    return head, rate or found[0], channels or found[1]


async def _feed(proc: asyncio.subprocess.Process, head: Iterable[bytes], rest: AsyncIterator[bytes]) -> None:
    """Copy the source into ffmpeg's stdin, waiting for it to drain; kill ffmpeg if the source fails."""
    stdin = proc.stdin
    assert stdin is not None
    try:
        for chunk in head:
            stdin.write(chunk)
            await stdin.drain()
        async for chunk in rest:
            stdin.write(chunk)
            await stdin.drain()
        stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        return  # ffmpeg stopped reading; its exit status says why
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise


async def _tail(stream: asyncio.StreamReader) -> bytes:
    """The last few KiB ffmpeg wrote to stderr (read all along so it never blocks on a full pipe)."""
    tail = b""
    while chunk := await stream.read(_STDERR_TAIL):
        tail = (tail + chunk)[-_STDERR_TAIL:]
    return tail


async def _stop(
    proc: asyncio.subprocess.Process,
    stdout: asyncio.StreamReader | None,
    feeder: asyncio.Task[None],
    stderr: asyncio.Task[bytes],
) -> None:
    """Kill ffmpeg if it still runs, end the helper tasks, and reap it (no zombie).

    stdout is read to its end first: asyncio only reports the exit once every pipe is closed,
    and a pipe paused because nobody read it would never see its EOF.
    """
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    feeder.cancel()
    while stdout is not None and await stdout.read(READ_BYTES):
        pass
    await asyncio.gather(feeder, stderr, return_exceptions=True)
    await proc.wait()


@dataclass(frozen=True)
class TranscodedFile:
    """A finished conversion in a scratch file: exactly ``size`` bytes, WAV header included."""

    path: Path
    size: int
    format: AudioFormat

    async def chunks(self, chunk_bytes: int = READ_BYTES) -> AsyncIterator[bytes]:
        """The file's bytes in order, read off the event loop."""
        handle = await asyncio.to_thread(self.path.open, "rb")
        try:
            while data := await asyncio.to_thread(handle.read, chunk_bytes):
                yield data
        finally:
            handle.close()


@contextlib.asynccontextmanager
async def transcoded(
    source: AsyncIterable[bytes],
    src_format: AudioFormat,
    dst_format: AudioFormat,
    rate: int | None,
    channels: int | None = 1,
    *,
    scratch_dir: Path,
    limit: asyncio.Semaphore | None = None,
) -> AsyncIterator[TranscodedFile]:
    """Convert all of ``source`` into a file under ``scratch_dir``; the file is removed on exit.

    A WAV result carries its true RIFF and data sizes, an MP3 its Info tag (ffmpeg writes it into
    the file). ``limit`` is held only while ffmpeg runs.
    """
    fd, name = await asyncio.to_thread(tempfile.mkstemp, prefix="transcode-", dir=scratch_dir)
    path = Path(name)
    try:
        if dst_format == "mp3":
            os.close(fd)
            await encode_mp3_file(source, src_format, rate, channels, path, limit=limit)
            yield TranscodedFile(path, (await asyncio.to_thread(path.stat)).st_size, dst_format)
            return
        size, info = 0, None
        with os.fdopen(fd, "wb") as out:
            stream = transcode(source, src_format, "wav", rate, channels, limit=limit)
            async with contextlib.aclosing(stream):
                async for chunk in stream:
                    if info is None:
                        info = parse_wav_header(chunk)  # the first chunk carries our whole header
                    await asyncio.to_thread(out.write, chunk)
                    size += len(chunk)
            if info is not None:
                header = wav_header(size - info.data_offset, info.rate, info.channels)
                await asyncio.to_thread(_overwrite_start, out, header)
        yield TranscodedFile(path, size, dst_format)
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)


def _overwrite_start(out: IO[bytes], header: bytes) -> None:
    """Replace the streaming header by the final one (same length, so the data stays put)."""
    out.seek(0)
    out.write(header)
