"""Uploads land in a scratch file first: probing needs the whole file, memory must not hold it.

The size limit is enforced while bytes arrive, so an oversized upload costs at most the limit
in scratch space and never reaches the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from media_mgr.errors import InvalidRequest, TooLarge

READ_BYTES = 256 * 1024


@dataclass
class StagedFile:
    path: Path
    size: int
    filename: str | None = None

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class Stager:
    """Writes one upload to a scratch file, counting bytes against the limit."""

    def __init__(self, scratch_dir: Path, limit_bytes: int) -> None:
        scratch_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=scratch_dir)
        self._file = os.fdopen(fd, "wb")
        self.path = Path(name)
        self.limit = limit_bytes
        self.size = 0

    def write(self, data: bytes) -> None:
        """Append bytes; page-cache writes of this size do not stall the loop noticeably."""
        self.size += len(data)
        if self.size > self.limit:
            self.abort()
            raise TooLarge(f"upload exceeds the limit of {self.limit} bytes")
        self._file.write(data)

    def finish(self, filename: str | None = None) -> StagedFile:
        self._file.close()
        if self.size == 0:
            self.abort()
            raise InvalidRequest("the upload is empty")
        return StagedFile(self.path, self.size, filename)

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


async def stage(source: AsyncIterable[bytes], scratch_dir: Path, limit_bytes: int) -> StagedFile:
    stager = Stager(scratch_dir, limit_bytes)
    try:
        async for piece in source:
            stager.write(piece)
    except BaseException:
        stager.abort()
        raise
    return stager.finish()


async def read_file(path: Path, chunk: int = READ_BYTES) -> AsyncIterator[bytes]:
    """Yield a local file in chunks without blocking the loop on the reads."""
    with path.open("rb") as f:
        while piece := await asyncio.to_thread(f.read, chunk):
            yield piece
