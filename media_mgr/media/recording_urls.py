"""The URLs that deliver a recording, issued and checked in one place for the CLI and every edge.

A recording is delivered either by mod_shout's ``record`` to the SHOUT port (``shout_url``: the
recording id as user, a ``record`` token as password, a mount naming the recording) or by
``http_put`` of a finished file to Kazoo's ``/store/`` path (``store_url``: a ``store`` token in
the path). Both tokens are ``media.urls`` tokens signed with the secret every instance shares, so
whichever instance the switch reaches accepts them; :meth:`RecordingUrls.verify` is the one check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Self
from urllib.parse import quote

from media_mgr.config import Settings
from media_mgr.errors import NotFound
from media_mgr.media import urls

RecordingKind = Literal["record", "store"]


@dataclass(frozen=True)
class RecordingUrlsConfig:
    """Where issued URLs point and how long they are valid; a configured Kazoo proxy pair, if any."""

    host: str
    http_port: int
    shout_port: int
    shout_ttl: int
    store_ttl: int
    store_user: str | None = None
    store_password: str | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, http_port: int | None = None, shout_port: int | None = None
    ) -> Self:
        """From the settings; the ports really bound (port 0 picks one) override the configured ones."""
        return cls(
            host=settings.url_host,
            http_port=settings.http_port if http_port is None else http_port,
            shout_port=settings.shout_port if shout_port is None else shout_port,
            shout_ttl=settings.shout_url_ttl,
            store_ttl=settings.store_put_url_ttl,
            store_user=settings.store_put_username,
            store_password=settings.store_put_password,
        )


class RecordingUrls:
    """Issues a recording's ``shout_url`` and ``store_url``, and checks the tokens they carry."""

    def __init__(
        self, config: RecordingUrlsConfig, secret: bytes, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.secret = secret
        self.clock = clock

    def issue(self, recording_id: str, fmt: str) -> dict[str, str]:
        """``{"shout_url", "store_url"}`` for the recording ``recording_id`` stored as ``fmt``."""
        c = self.config
        now = self.clock()
        record = urls.issue(self.secret, _claims(recording_id, fmt, "record", now + c.shout_ttl), now)
        store = urls.issue(self.secret, _claims(recording_id, fmt, "store", now + c.store_ttl), now)
        host = f"[{c.host}]" if ":" in c.host and not c.host.startswith("[") else c.host
        # Each URL carries its own user (the recording id) and password (the token). A configured
        # Kazoo proxy pair replaces them in store URLs, as Kazoo's authenticated_store URLs have it.
        user, password = (c.store_user, c.store_password) if c.store_user else (recording_id, store)
        auth = f"{quote(user, safe='')}:{quote(password or '', safe='')}"
        return {
            "shout_url": f"shout://{recording_id}:{record}@{host}:{c.shout_port}/{recording_id}.mp3",
            "store_url": f"http://{auth}@{host}:{c.http_port}/store/{store}/{recording_id}.{fmt}",
        }

    def verify(self, token: str, kind: RecordingKind, recording_id: str | None = None) -> str:
        """The recording a ``kind`` token names (and it must be ``recording_id`` when given).

        ``NotFound`` when it is not such a token of ours, ``Gone`` once it expired.
        """
        claims = urls.verify(self.secret, token, self.clock())
        if claims.kind != kind or (recording_id is not None and claims.media_id != recording_id):
            raise NotFound(f"unknown {kind} token")
        return claims.media_id


def _claims(recording_id: str, fmt: str, kind: RecordingKind, expires: float) -> urls.StreamClaims:
    url_format: urls.Format = "wav" if fmt == "wav" else "mp3"
    return urls.StreamClaims(recording_id, 0, url_format, None, "single", int(expires), kind)
