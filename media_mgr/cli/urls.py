"""``url`` and ``record-url``: issue URLs as the running server would, for its real ports."""

from __future__ import annotations

import json
from typing import Any, Literal

import click

from media_mgr import logs
from media_mgr.cli import runfile
from media_mgr.cli.group import Context, main, run
from media_mgr.config import Settings
from media_mgr.errors import MediaMgrError

NO_BUFFERING = "enable_file_write_buffering=false"


def live_ports(settings: Settings, *, shout: bool) -> tuple[int, int]:
    """(http, shout) ports of the server running on this data dir, else the configured ones.

    A configured 0 cannot be issued: without a running server to ask, that is a one-line error.
    """
    bound = runfile.read(settings.data_dir)
    if bound is not None:
        return bound.http_port, bound.shout_port
    zero = [("MEDIA_MGR_HTTP_PORT", settings.http_port)]
    if shout:
        zero.append(("MEDIA_MGR_SHOUT_PORT", settings.shout_port))
    for variable, port in zero:
        if port == 0:
            raise click.ClickException(
                f"{variable} is 0 and no running server recorded its port in "
                f"{settings.data_dir / runfile.NAME}: run this with the server's MEDIA_MGR_DATA_DIR, "
                f"or give the port it listens on"
            )
    return settings.http_port, settings.shout_port


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
    http_port, _ = live_ports(settings, shout=False)

    async def go() -> str:
        from media_mgr.builders import open_playback, open_store, open_tts, shared_secret

        async with open_store(settings) as store, open_tts(settings, store) as tts:
            secret = await shared_secret(settings, store)
            playback = await open_playback(settings, store, http_port=http_port, secret=secret, tts=tts)
            try:
                return await playback.stream_url(media_name, stream_type, protocol, fmt, rate)  # type: ignore[arg-type]
            except MediaMgrError as exc:
                raise click.ClickException(exc.detail) from None

    click.echo(run(go(), settings.database_url))


@main.command(name="record-url")
@click.option("--account-id", help="owner account (32 hex); default: system")
@click.option("--name", help="name of the recording (default: <id>.<format>)")
@click.option("--format", "fmt", type=click.Choice(["mp3", "wav"]), default="mp3", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="the recording with its URLs, as POST /v1/recordings")
@click.pass_obj
def record_url(obj: Context, account_id: str | None, name: str | None, fmt: str, as_json: bool) -> None:
    """Create a recording and print the URL to record it to.

    mp3: a shout:// URL for mod_shout's `record` (a SHOUT source sends MP3), with the dialplan
    lines on stderr; wav: an http:// store URL to PUT the finished file to (Kazoo's way).
    """
    settings = obj.settings()
    logs.configure("warning")
    http_port, shout_port = live_ports(settings, shout=fmt == "mp3")

    async def go() -> dict[str, Any]:
        from media_mgr.builders import open_recorder, open_store, recording_urls, shared_secret
        from media_mgr.ids import new_id
        from media_mgr.media.library import check_account_id
        from media_mgr.recording.ingest import NewRecording

        rid = new_id()
        kind: Literal["mp3", "wav"] = "wav" if fmt == "wav" else "mp3"
        async with open_store(settings) as store, open_recorder(settings, store) as recorder:
            try:
                new = NewRecording(check_account_id(account_id), name or f"{rid}.{fmt}", kind, rid)
                rec = await recorder.create(new)
            except MediaMgrError as exc:
                raise click.ClickException(exc.detail) from None
            secret = await shared_secret(settings, store)
            urls = recording_urls(settings, secret, http_port=http_port, shout_port=shout_port)
            return {**rec.public(), **urls.issue(rec.id, rec.format)}

    result = run(go(), settings.database_url)
    if fmt == "wav":
        result.pop("shout_url", None)  # a SHOUT source sends MP3: that URL could never work
    if as_json:
        click.echo(json.dumps(result, indent=2))
    elif fmt == "wav":
        click.echo(result["store_url"])
        click.echo("PUT the finished WAV there (Kazoo's store_url; curl -T file.wav URL)", err=True)
    else:
        click.echo(result["shout_url"])
        click.echo(dialplan(result["shout_url"]), err=True)


def dialplan(shout_url: str) -> str:
    """The dialplan lines that record to ``shout_url`` without losing audio (see the README)."""
    return (
        "FreeSWITCH dialplan (file write buffering off, or mod_shout drops up to 4 s of audio):\n"
        f'  <action application="set" data="{NO_BUFFERING}"/>\n'
        f'  <action application="record" data="{shout_url}"/>'
    )
