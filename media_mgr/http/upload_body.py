"""Read an upload body, raw or multipart, straight into a scratch file.

Starlette's form parser would spool the file and only then let us look at it; parsing the
multipart stream here lets the size limit stop an oversized upload as it arrives, and the file
part never exists twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from media_mgr.errors import InvalidRequest
from media_mgr.media.staging import StagedFile, Stager, stage

FILE_FIELD = "file"
MAX_FIELD_BYTES = 4096
MAX_FIELDS = 32


@dataclass
class UploadBody:
    staged: StagedFile
    fields: dict[str, str] = field(default_factory=dict)


async def read_upload(
    content_type: str, body: AsyncIterable[bytes], scratch_dir: Path, limit_bytes: int
) -> UploadBody:
    """Stage the audio of a raw or multipart body; other multipart fields come back as text."""
    mime, params = parse_options_header(content_type)
    if mime == b"multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary:
            raise InvalidRequest("multipart body without a boundary")
        return await _multipart(boundary, body, scratch_dir, limit_bytes)
    # Any other type is staged and probed: curl --data-binary labels audio as a form, for one.
    return UploadBody(await stage(body, scratch_dir, limit_bytes))


class _Parts:
    """Collects multipart callbacks: small fields in memory, the file part into the stager."""

    def __init__(self, stager: Stager) -> None:
        self.stager = stager
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.saw_file = False
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, str] = {}
        self._name: str | None = None
        self._is_file = False
        self._value = bytearray()
        self.error: Exception | None = None

    def on_part_begin(self) -> None:
        self._headers = {}
        self._name, self._is_file, self._value = None, False, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        key = self._header_field.decode("latin-1").lower()
        self._headers[key] = self._header_value.decode("utf-8", "replace")
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        msg = Message()
        msg["content-disposition"] = self._headers.get("content-disposition", "")
        self._name = msg.get_param("name", header="content-disposition")  # type: ignore[assignment]
        filename = msg.get_param("filename", header="content-disposition")
        self._is_file = self._name == FILE_FIELD
        if self._is_file:
            if self.saw_file:
                raise InvalidRequest("only one 'file' part may be sent")
            self.saw_file = True
            self.filename = filename if isinstance(filename, str) else None
        elif len(self.fields) >= MAX_FIELDS:
            raise InvalidRequest(f"too many multipart fields (at most {MAX_FIELDS})")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.stager.write(data[start:end])
        else:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD_BYTES:
                raise InvalidRequest(f"multipart field {self._name!r} is longer than {MAX_FIELD_BYTES} bytes")

    def on_part_end(self) -> None:
        if not self._is_file and self._name:
            self.fields[self._name] = self._value.decode("utf-8", "replace")


async def _multipart(
    boundary: bytes, body: AsyncIterable[bytes], scratch_dir: Path, limit_bytes: int
) -> UploadBody:
    stager = Stager(scratch_dir, limit_bytes)
    parts = _Parts(stager)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": parts.on_part_begin,
            "on_part_data": parts.on_part_data,
            "on_part_end": parts.on_part_end,
            "on_header_field": parts.on_header_field,
            "on_header_value": parts.on_header_value,
            "on_header_end": parts.on_header_end,
            "on_headers_finished": parts.on_headers_finished,
        },
    )
    try:
        async for piece in body:
            parser.write(piece)
        parser.finalize()
    except MultipartParseError as exc:
        stager.abort()
        raise InvalidRequest(f"malformed multipart body: {exc}") from None
    except BaseException:
        stager.abort()
        raise
    if not parts.saw_file:
        stager.abort()
        raise InvalidRequest("multipart body has no 'file' part")
    return UploadBody(stager.finish(parts.filename), parts.fields)
