"""``serve`` and ``migrate``: run the service, or only bring the database schema up to date."""

from __future__ import annotations

import click

from media_mgr import logs
from media_mgr.cli import runfile
from media_mgr.cli.errors import check_database
from media_mgr.cli.group import Context, main, run


@main.command()
@click.option(
    "--workers", type=click.IntRange(1, 256),
    help="processes serving the same ports [MEDIA_MGR_WORKERS]; default: usable cores; 1: one process",
)  # fmt: skip
@click.pass_obj
def serve(obj: Context, workers: int | None) -> None:
    """Run the HTTP and SHOUT servers (and, when configured, the AMQP listener).

    With --workers N above 1, a supervisor binds the ports once and runs N worker processes on them,
    restarting any that dies. Its bound ports are recorded in DATA_DIR/serve.json while it runs (for
    `media-mgr url`). Ctrl-C (SIGINT) or SIGTERM stop it gracefully.
    """
    if workers is not None:
        obj.overrides["workers"] = workers
    settings = obj.settings()
    logs.configure(settings.log_level)
    run(check_database(settings), settings.database_url)

    def bound(http: int, shout: int) -> None:
        runfile.write(settings.data_dir, settings.bind, http, shout)

    try:
        if settings.workers > 1:
            from media_mgr.supervisor import Supervisor, SupervisorFailed

            supervisor = Supervisor(settings)
            supervisor.on_bound = bound
            try:
                run(supervisor.serve(), settings.database_url)
            except SupervisorFailed as exc:
                raise click.ClickException(str(exc)) from None
        else:
            from media_mgr.app import Service

            service = Service(settings)
            service.on_bound = bound
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
