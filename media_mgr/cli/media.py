"""The operator's media commands: import, ls, rm, export."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from media_mgr.cli.group import Context, main, with_library
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
@click.option(
    "--replace", is_flag=True,
    help="with --prompts: give an existing prompt a new revision (default: skip it, and say so)",
)  # fmt: skip
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
    """Delete media by id: each id on its own; a bad one is reported and the others still go."""

    async def go(lib: Any) -> int:
        failed = 0
        for media_id in media_ids:
            try:
                await lib.delete(media_id)
            except MediaMgrError as exc:
                failed += 1
                click.echo(f"not deleted {media_id}: {exc.detail}", err=True)
                continue
            click.echo(f"deleted {media_id}")
        return failed

    failed = with_library(obj, go)
    if failed:
        done = len(media_ids) - failed
        click.echo(f"deleted {done} of {len(media_ids)}; {failed} not deleted (see above)", err=True)
        sys.exit(1)


@main.command()
@click.argument("media_id")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path),
    help="file to write, '-' for stdout; default: stdout when it is redirected or piped, else <id>.<ext>",
)  # fmt: skip
@click.pass_obj
def export(obj: Context, media_id: str, output: Path | None) -> None:
    """Write a media item's stored content to a file or stdout (`export ID > f.wav`, `export ID | ...`)."""

    async def go(lib: Any) -> None:
        try:
            item = await lib.get(media_id)
        except Exception as exc:
            raise _fail(exc) from None
        # Redirected or piped, the bytes go there by default (never to a terminal).
        target = output or (Path("-") if not sys.stdout.isatty() else Path(f"{item.id}.{item.format}"))
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
    """Import files ``jobs`` at a time; one bad file is reported and the rest go on.

    A prompt that already exists is skipped (listed, not a failure) unless ``replace``.
    """
    console = Console(stderr=True)
    failures: list[tuple[Path, str]] = []
    outcomes: dict[str, list[Path]] = {"added": [], "replaced": [], "skipped": []}
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
                    outcome = await _import_one(lib, path, account_id, language, prompts, replace)
                    outcomes[outcome].append(path)
                except MediaMgrError as exc:
                    failures.append((path, exc.detail))
                progress.advance(task)

        await asyncio.gather(*(worker() for _ in range(min(jobs, len(files)))))
    for path in outcomes["skipped"]:
        click.echo(f"skipped {path}: the prompt exists (--replace gives it a new revision)", err=True)
    for path, reason in failures:
        click.echo(f"failed {path}: {reason}", err=True)
    added, replaced, skipped = (len(outcomes[k]) for k in ("added", "replaced", "skipped"))
    summary = f"imported {added + replaced} of {len(files)} files"
    counts = ((replaced, "replaced"), (skipped, "skipped"), (len(failures), "failed"))
    details = [f"{n} {what}" for n, what in counts if n]
    click.echo(summary + (f" ({', '.join(details)})" if details else ""), err=True)
    return len(failures)


async def _import_one(
    lib: MediaLibrary, path: Path, account_id: str | None, language: str | None, prompts: bool, replace: bool
) -> Literal["added", "replaced", "skipped"]:
    prompt_id = path.stem if prompts else None
    lang = language
    if prompts and lang is None and LANGUAGE.match(path.parent.name.lower()):
        lang = path.parent.name  # Kazoo's prompt tree: <lang>/<prompt_id>.wav
    meta = lib.describe(account_id=account_id, name=path.name, prompt_id=prompt_id, language=lang)
    staged = await asyncio.to_thread(_stage_copy, lib.scratch_dir, path)
    try:
        await lib.add(meta, staged)
    except Conflict:
        if not (meta.prompt_id and meta.language):
            raise
        existing = await lib.store.find_prompt(meta.account_id, meta.prompt_id, [meta.language])
        if existing is None:
            raise
        if not replace:
            return "skipped"
        await lib.replace(existing.id, await asyncio.to_thread(_stage_copy, lib.scratch_dir, path))
        return "replaced"
    return "added"


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
    header = ("id", "name", "prompt_id", "lang", "duration", "codec", "rate", "size", "rev", "media_name")
    rows = [
        (i.id, i.name, i.prompt_id or "", i.language or "", f"{i.duration_ms / 1000:.2f}s", i.codec,
         str(i.sample_rate), str(i.size), str(i.revision), i.media_name)
        for i in items
    ]  # fmt: skip
    if not sys.stdout.isatty():  # piped: tab-separated, every column whole, for cut and awk
        for row in (header, *rows):
            sys.stdout.write("\t".join(row) + "\n")
    else:
        lines, hidden = fit_table(header, rows, shutil.get_terminal_size().columns)
        sys.stdout.write("".join(line + "\n" for line in lines))
        if hidden:
            click.echo(
                f"columns hidden to fit the terminal: {', '.join(hidden)} (--json shows all)", err=True
            )
    if total > len(items):
        click.echo(f"{len(items)} of {total} shown (--limit)", err=True)


def fit_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], width: int
) -> tuple[list[str], list[str]]:
    """Aligned columns, whole values only: columns that do not fit ``width`` are left out, from the
    right, and named; the first (the id that ``export`` and ``rm`` take) is always shown whole."""
    widths = [max(len(c) for c in column) for column in zip(header, *rows, strict=True)]
    keep, used = 0, -2
    for w in widths:
        if keep and used + 2 + w > width:
            break
        keep, used = keep + 1, used + 2 + w
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:keep], widths, strict=False)).rstrip()
             for row in (header, *rows)]  # fmt: skip
    return lines, list(header[keep:])
