"""``serve`` and ``migrate``: run the service, or only bring the database schema up to date."""

from __future__ import annotations

import click

from media_mgr import logs
from media_mgr.cli import runfile
from media_mgr.cli.errors import check_database
from media_mgr.cli.group import Context, main, run


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
