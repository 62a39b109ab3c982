"""The operator's media commands: import, ls, rm, export."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, Literal

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from media_mgr import logs
from media_mgr.cli import Context, main, run, with_library
from media_mgr.errors import Conflict, MediaMgrError
from media_mgr.media.library import LANGUAGE, MediaLibrary
from media_mgr.media.models import MediaFilter
from media_mgr.media.staging import StagedFile

AUDIO_SUFFIXES = {".wav", ".mp3"}


def _fail(exc: Exception) -> click.ClickException:
    detail = getattr(exc, "detail", None) or str(exc)
    return click.ClickException(detail)


@main.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--account-id", help="owner account (32 hex); default: system media")
@click.option("--language", help="language of the prompts (default: the folder name when it is one)")
@click.option(
    "--prompts", is_flag=True, help="each file is a prompt named by its file name (vm-enter_pass.wav)"
)
@click.option("--replace", is_flag=True, help="with --prompts: give an existing prompt a new revision")
@click.option("--jobs", default=4, show_default=True, type=click.IntRange(1, 32), help="files in parallel")
@click.pass_obj
def import_(
    obj: Context, paths: tuple[Path, ...], account_id: str | None, language: str | None,
    prompts: bool, replace: bool, jobs: int,
) -> None:  # fmt: skip
    """Import WAV and MP3 files, or folders of them, with a progress bar."""
    files = collect_audio(paths)
    if not files:
        raise click.ClickException("no .wav or .mp3 files found")
    failures = with_library(
        obj,
        lambda lib: import_files(
            lib, files, account_id=account_id, language=language, prompts=prompts, replace=replace, jobs=jobs
        ),
    )
    if failures:
        sys.exit(1)


def collect_audio(paths: tuple[Path, ...]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*")) if p.suffix.lower() in AUDIO_SUFFIXES)
        else:
            found.append(path)
    return found


@main.command(name="ls")
@click.option("--account-id")
@click.option("--system", is_flag=True, default=None, help="system media only")
@click.option("--prompt-id")
@click.option("--language")
@click.option("--name", help="substring of the name")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="one JSON record per line")
@click.pass_obj
def ls(obj: Context, /, as_json: bool, limit: int, **filters: Any) -> None:
    """List media."""
    with_library(obj, lambda lib: list_media(lib, filters, limit, as_json))


@main.command()
@click.argument("media_ids", nargs=-1, required=True)
@click.pass_obj
def rm(obj: Context, media_ids: tuple[str, ...]) -> None:
    """Delete media by id."""

    async def go(lib: Any) -> None:
        for media_id in media_ids:
            try:
                await lib.delete(media_id)
            except Exception as exc:
                raise _fail(exc) from None
            click.echo(f"deleted {media_id}")

    with_library(obj, go)


@main.command()
@click.argument("media_id")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="file to write; default: <id>.<ext>")
@click.pass_obj
def export(obj: Context, media_id: str, output: Path | None) -> None:
    """Write a media item's stored content to a file ('-' for stdout)."""

    async def go(lib: Any) -> None:
        try:
            item = await lib.get(media_id)
        except Exception as exc:
            raise _fail(exc) from None
        target = output or Path(f"{item.id}.{item.format}")
        if str(target) == "-":
            out = sys.stdout.buffer
            async for chunk in lib.content(item):
                out.write(chunk)
            out.flush()
            return
        tmp = target.with_name(target.name + ".part")
        with tmp.open("wb") as f:
            async for chunk in lib.content(item):
                f.write(chunk)
        tmp.replace(target)
        click.echo(f"{target} ({item.size} bytes, revision {item.revision})", err=True)

    with_library(obj, go)


async def import_files(
    lib: MediaLibrary,
    files: list[Path],
    *,
    account_id: str | None,
    language: str | None,
    prompts: bool,
    replace: bool,
    jobs: int,
) -> int:
    """Import files ``jobs`` at a time; one bad file is reported and the rest go on."""
    console = Console(stderr=True)
    failures: list[tuple[Path, str]] = []
    queue: asyncio.Queue[Path] = asyncio.Queue()
    for path in files:
        queue.put_nowait(path)
    with Progress(
        TextColumn("[bold]import"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[current]}"),
        console=console,
        transient=not console.is_terminal,
    ) as progress:
        task = progress.add_task("import", total=len(files), current="")

        async def worker() -> None:
            while not queue.empty():
                path = queue.get_nowait()
                progress.update(task, current=path.name)
                try:
                    await _import_one(lib, path, account_id, language, prompts, replace)
                except MediaMgrError as exc:
                    failures.append((path, exc.detail))
                progress.advance(task)

        await asyncio.gather(*(worker() for _ in range(min(jobs, len(files)))))
    for path, reason in failures:
        click.echo(f"failed {path}: {reason}", err=True)
    click.echo(f"imported {len(files) - len(failures)} of {len(files)} files", err=True)
    return len(failures)


async def _import_one(
    lib: MediaLibrary, path: Path, account_id: str | None, language: str | None, prompts: bool, replace: bool
) -> None:
    prompt_id = path.stem if prompts else None
    lang = language
    if prompts and lang is None and LANGUAGE.match(path.parent.name.lower()):
        lang = path.parent.name  # Kazoo's prompt tree: <lang>/<prompt_id>.wav
    meta = lib.describe(account_id=account_id, name=path.name, prompt_id=prompt_id, language=lang)
    staged = await asyncio.to_thread(_stage_copy, lib.scratch_dir, path)
    try:
        await lib.add(meta, staged)
    except Conflict:
        if not (replace and meta.prompt_id and meta.language):
            raise
        existing = await lib.store.find_prompt(meta.account_id, meta.prompt_id, [meta.language])
        if existing is None:
            raise
        await lib.replace(existing.id, await asyncio.to_thread(_stage_copy, lib.scratch_dir, path))


def _stage_copy(scratch: Path, path: Path) -> StagedFile:
    """The library consumes (deletes) what it is given, so it gets a copy, never the user's file."""
    import shutil
    import tempfile

    fd, name = tempfile.mkstemp(prefix="import-", suffix=path.suffix, dir=scratch)
    with open(fd, "wb") as out, path.open("rb") as src:
        shutil.copyfileobj(src, out, 1024 * 1024)
    return StagedFile(Path(name), path.stat().st_size, path.name)


async def list_media(lib: MediaLibrary, filters: dict[str, Any], limit: int, as_json: bool) -> None:
    from media_mgr.media.library import check_account_id, check_language

    try:
        items, total = await lib.list(
            MediaFilter(
                account_id=check_account_id(filters.get("account_id")),
                system=filters.get("system"),
                prompt_id=filters.get("prompt_id"),
                language=check_language(filters.get("language")),
                name=filters.get("name"),
                limit=limit,
            )
        )
    except MediaMgrError as exc:
        raise click.ClickException(exc.detail) from None
    if as_json:
        for item in items:
            sys.stdout.write(json.dumps(item.public()) + "\n")
        return
    header = ("id", "media_name", "name", "prompt_id", "lang", "codec", "rate", "duration", "size", "rev")
    rows = [
        (i.id, i.media_name, i.name, i.prompt_id or "", i.language or "", i.codec, str(i.sample_rate),
         f"{i.duration_ms / 1000:.2f}s", str(i.size), str(i.revision))
        for i in items
    ]  # fmt: skip
    if not sys.stdout.isatty():  # piped: tab-separated, for cut and awk
        for row in (header, *rows):
            sys.stdout.write("\t".join(row) + "\n")
        return
    table = Table(*header)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    if total > len(items):
        Console(stderr=True).print(f"{len(items)} of {total} shown (--limit)")


@main.command()
@click.argument("media_name")
@click.option("--stream-type", type=click.Choice(["new", "extant"]), default="new", show_default=True)
@click.option("--protocol", type=click.Choice(["http", "shout"]), help="shout: an MP3 URL for mod_shout")
@click.option("--format", "fmt", type=click.Choice(["wav", "mp3"]), help="default: the stored format")
@click.option("--rate", type=int, help="resample to this rate")
@click.pass_obj
def url(obj: Context, media_name: str, stream_type: str, protocol: str | None, fmt: str | None,
        rate: int | None) -> None:  # fmt: skip
    """Issue a stream URL for a Media-Name, as an AMQP media_req would get."""
    settings = obj.settings()
    logs.configure("warning")

    async def go() -> str:
        from media_mgr.app import open_playback, open_store, open_tts

        store = await open_store(settings)
        tts = open_tts(settings, store)  # a tts:// name is synthesised (or found) like in the service
        try:
            playback = await open_playback(settings, store, settings.http_port, tts)
            return await playback.stream_url(media_name, stream_type, protocol, fmt, rate)  # type: ignore[arg-type]
        except MediaMgrError as exc:
            raise click.ClickException(exc.detail) from None
        finally:
            if tts is not None:
                await tts.close()
            await store.close()

    click.echo(run(go()))


@main.command(name="record-url")
@click.option("--account-id", help="owner account (32 hex); default: system")
@click.option("--name", help="name of the recording (default: <id>.<format>)")
@click.option("--format", "fmt", type=click.Choice(["mp3", "wav"]), default="mp3", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="the recording with both URLs, as POST /v1/recordings")
@click.pass_obj
def record_url(obj: Context, account_id: str | None, name: str | None, fmt: str, as_json: bool) -> None:
    """Create a recording and print its shout:// URL for mod_shout's record (--json: also store_url)."""
    settings = obj.settings()
    logs.configure("warning")
    if settings.shout_port == 0 or settings.http_port == 0:
        raise click.ClickException("issued URLs need fixed ports (MEDIA_MGR_SHOUT_PORT, MEDIA_MGR_HTTP_PORT)")

    async def go() -> dict[str, Any]:
        from media_mgr.app import open_store, shared_secret
        from media_mgr.ids import new_id
        from media_mgr.media.library import check_account_id
        from media_mgr.media.recording_urls import RecordingUrls, RecordingUrlsConfig
        from media_mgr.recording.ingest import NewRecording
        from media_mgr.recording.models import Recording
        from media_mgr.store.recordings import RecordingStore

        store = await open_store(settings)
        try:
            rid = new_id()
            kind: Literal["mp3", "wav"] = "wav" if fmt == "wav" else "mp3"
            new = NewRecording(check_account_id(account_id), name or f"{rid}.{fmt}", kind, rid)
            recordings = RecordingStore(store.pool, store.media.blobs)
            rec = Recording.of(await recordings.create(rid, new.account_id, new.name, new.fmt))
            urls = RecordingUrls(
                RecordingUrlsConfig.from_settings(settings), await shared_secret(settings, store)
            )
            return {**rec.public(), **urls.issue(rec.id, rec.format)}
        except MediaMgrError as exc:
            raise click.ClickException(exc.detail) from None
        finally:
            await store.close()

    result = run(go())
    click.echo(json.dumps(result, indent=2) if as_json else result["shout_url"])
