"""The ``media-mgr`` command: serve, migrate, and the operator's media commands.

Every global flag maps to one ``Settings`` field and overrides its ``MEDIA_MGR_*`` variable.
The media commands work on the store directly (no server needed), through the same library
the REST API uses, so the same rules apply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from media_mgr import logs
from media_mgr.config import Settings

T = TypeVar("T")


@dataclass
class Context:
    overrides: dict[str, Any]

    def settings(self) -> Settings:
        try:
            return Settings(**self.overrides)
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"]) or "settings"
                lines.append(f"  MEDIA_MGR_{field.upper()}: {err['msg']} (got {err.get('input')!r})")
            raise click.ClickException("invalid configuration:\n" + "\n".join(lines)) from None


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(coro)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--database-url", help="PostgreSQL DSN [MEDIA_MGR_DATABASE_URL]; default: embedded")
@click.option("--data-dir", type=click.Path(path_type=Path), help="[MEDIA_MGR_DATA_DIR]")
@click.option("--amqp-url", help="[MEDIA_MGR_AMQP_URL]; default: AMQP off")
@click.option("--bind", help="[MEDIA_MGR_BIND]")
@click.option("--http-port", type=int, help="[MEDIA_MGR_HTTP_PORT]")
@click.option("--shout-port", type=int, help="[MEDIA_MGR_SHOUT_PORT]")
@click.option("--public-host", help="[MEDIA_MGR_PUBLIC_HOST]")
@click.option("--log-level", help="[MEDIA_MGR_LOG_LEVEL]")
@click.version_option(package_name="media-mgr")
@click.pass_context
def main(ctx: click.Context, /, **options: Any) -> None:
    """A Kazoo-style media manager for FreeSWITCH."""
    ctx.obj = Context({k: v for k, v in options.items() if v is not None})


@main.command()
@click.pass_obj
def serve(obj: Context) -> None:
    """Run the HTTP server (and, when configured, the AMQP listener) in one process."""
    settings = obj.settings()
    logs.configure(settings.log_level)
    from media_mgr.app import Service

    run(Service(settings).serve())


@main.command()
@click.pass_obj
def migrate(obj: Context) -> None:
    """Apply the database migrations that are missing."""
    settings = obj.settings()
    logs.configure(settings.log_level)

    async def go() -> None:
        from media_mgr.app import open_store

        store = await open_store(settings)
        await store.close()

    run(go())
    click.echo("migrations applied")


def with_library(obj: Context, work: Callable[[Any], Awaitable[T]]) -> T:
    """Open the store and the library for one command, and close them after."""
    settings = obj.settings()
    logs.configure("warning" if settings.log_level == "info" else settings.log_level)

    async def go() -> T:
        from media_mgr.app import open_library, open_store

        store = await open_store(settings)
        try:
            return await work(open_library(settings, store))
        finally:
            await store.close()

    return run(go())


from media_mgr.cli import media as _media  # noqa: E402,F401  (registers the media commands)
