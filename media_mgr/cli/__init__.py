"""The ``media-mgr`` command: serve, migrate, and the operator's media commands.

Every global flag maps to one ``Settings`` field and overrides its ``MEDIA_MGR_*`` variable; it may
stand before or after the subcommand (``media-mgr serve --http-port 0``). The media commands work on
the store directly (no server needed), through the same library the REST API uses, so the same
rules apply. No traceback reaches the user: configuration, database and port problems end in one
line and a non-zero status.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from media_mgr import logs
from media_mgr.cli import runfile
from media_mgr.cli.errors import check_database, one_line
from media_mgr.config import Settings

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


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


def run(coro: Coroutine[Any, Any, T], dsn: str | None = None) -> T:
    """Run a command's coroutine; a database or embedded-server failure becomes one line."""
    try:
        import uvloop

        runner: Callable[[Coroutine[Any, Any, T]], T] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        runner = asyncio.run
    try:
        return runner(coro)
    except click.ClickException:
        raise
    except Exception as exc:
        message = one_line(exc, dsn)
        if message is None:
            raise
        raise click.ClickException(message) from None


_GLOBAL_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("--database-url", {"help": "PostgreSQL DSN [MEDIA_MGR_DATABASE_URL]; default: embedded"}),
    ("--data-dir", {"type": click.Path(path_type=Path), "help": "[MEDIA_MGR_DATA_DIR]"}),
    ("--amqp-url", {"help": "[MEDIA_MGR_AMQP_URL]; default: AMQP off"}),
    ("--bind", {"help": "[MEDIA_MGR_BIND]"}),
    ("--http-port", {"type": int, "help": "[MEDIA_MGR_HTTP_PORT]"}),
    ("--shout-port", {"type": int, "help": "[MEDIA_MGR_SHOUT_PORT]"}),
    ("--public-host", {"help": "[MEDIA_MGR_PUBLIC_HOST]"}),
    ("--log-level", {"help": "[MEDIA_MGR_LOG_LEVEL]"}),
]
_GLOBAL_NAMES = [flag[2:].replace("-", "_") for flag, _ in _GLOBAL_OPTIONS]


def global_options(func: F) -> F:
    """Accept the global flags after a subcommand too; there they win over the ones before it."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        obj = click.get_current_context().find_object(Context)
        assert obj is not None
        for name in _GLOBAL_NAMES:
            value = kwargs.pop(name, None)
            if value is not None:
                obj.overrides[name] = value
        return func(*args, **kwargs)

    decorated: Callable[..., Any] = wrapper
    for flag, attrs in reversed(_GLOBAL_OPTIONS):
        decorated = click.option(flag, **attrs, hidden=True)(decorated)
    return decorated  # type: ignore[return-value]


class _Group(click.Group):
    """Every subcommand also takes the global flags (hidden from its own help)."""

    def command(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], click.Command]:
        register: Callable[[Callable[..., Any]], click.Command] = super().command(*args, **kwargs)
        return lambda func: register(global_options(func))


def _main_options(func: F) -> F:
    decorated: Callable[..., Any] = func
    for flag, attrs in reversed(_GLOBAL_OPTIONS):
        decorated = click.option(flag, **attrs)(decorated)
    return decorated  # type: ignore[return-value]


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Global options may also follow the subcommand: media-mgr serve --http-port 0",
)
@_main_options
@click.version_option(package_name="kazoo-media-mgr")
@click.pass_context
def main(ctx: click.Context, /, **options: Any) -> None:
    """A Kazoo-style media manager for FreeSWITCH."""
    ctx.obj = Context({k: v for k, v in options.items() if v is not None})


@main.command()
@click.pass_obj
def serve(obj: Context) -> None:
    """Run the HTTP server (and, when configured, the AMQP listener) in one process.

    Its bound ports are recorded in DATA_DIR/serve.json while it runs (for `media-mgr url`).
    Ctrl-C (SIGINT) or SIGTERM stop it gracefully.
    """
    settings = obj.settings()
    logs.configure(settings.log_level)
    run(check_database(settings), settings.database_url)
    from media_mgr.app import Service

    service = Service(settings)
    service.on_bound = lambda http, shout: runfile.write(settings.data_dir, settings.bind, http, shout)
    try:
        run(service.serve())
    except KeyboardInterrupt:
        pass  # Ctrl-C: uvicorn shut down gracefully, then re-raised the signal; that is a clean stop
    finally:
        runfile.remove(settings.data_dir)


@main.command()
@click.pass_obj
def migrate(obj: Context) -> None:
    """Apply the database migrations that are missing."""
    settings = obj.settings()
    logs.configure(settings.log_level)

    async def go() -> None:
        from media_mgr.builders import open_store

        async with open_store(settings):
            pass

    run(go(), settings.database_url)
    click.echo("migrations applied")


def with_library(obj: Context, work: Callable[[Any], Awaitable[T]]) -> T:
    """Open the store and the library for one command, and close them after."""
    settings = obj.settings()
    logs.configure("warning" if settings.log_level == "info" else settings.log_level)

    async def go() -> T:
        from media_mgr.builders import open_library, open_store

        async with open_store(settings) as store:
            return await work(open_library(settings, store))

    return run(go(), settings.database_url)


from media_mgr.cli import media as _media  # noqa: E402,F401  (registers the media commands)
from media_mgr.cli import urls as _urls  # noqa: E402,F401  (registers url and record-url)
