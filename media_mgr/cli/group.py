"""The ``media-mgr`` command group: global flags (each one ``Settings`` field), the run helper.

Every global flag maps to one ``Settings`` field and overrides its ``MEDIA_MGR_*`` variable; it is
accepted before or after the subcommand. ``run`` turns a database that cannot be used into one line.
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
from media_mgr.cli.errors import one_line
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


def with_library(obj: Context, work: Callable[[Any], Awaitable[T]]) -> T:
    """Open the store and the library for one command, and close them after."""
    settings = obj.settings()
    logs.configure("warning" if settings.log_level == "info" else settings.log_level)

    async def go() -> T:
        from media_mgr.builders import open_library, open_store

        async with open_store(settings) as store:
            return await work(open_library(settings, store))

    return run(go(), settings.database_url)
