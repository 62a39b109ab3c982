"""Who may be a source on which mount: pure checks, no I/O.

Two kinds of credentials, as Basic auth on SOURCE/PUT (the user name is free: mod_shout sends the
URL's, python-shout ``source``):

- per recording: the password is a signed token of kind ``record`` naming the recording, and the
  mount is ``/<recording id>.<ext>``. Tokens are signed with the secret all instances share, so a
  URL issued by one instance is accepted by any other.
- optionally one configured source password (Kazoo's early design): any mount; a mount naming an
  existing recording records into it, any other mount becomes a new ad-hoc recording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from media_mgr.credentials import same_secret
from media_mgr.errors import Gone, NotFound, Unauthorized
from media_mgr.ids import HEX32
from media_mgr.media import urls
from media_mgr.media.recording_urls import RecordingUrls

_RECORDING_MOUNT = re.compile(rf"/({HEX32})(?:\.[A-Za-z0-9]{{1,8}})?")
REALM = "media-mgr"
CHALLENGE = {"WWW-Authenticate": f'Basic realm="{REALM}"'}  # libshout then retries with credentials


@dataclass(frozen=True)
class SourceGrant:
    mount: str
    recording_id: str | None  # None: a new ad-hoc recording named after the mount
    adhoc: bool  # granted by the configured source password, not a recording's own token


def recording_of_mount(mount: str) -> str | None:
    match = _RECORDING_MOUNT.fullmatch(mount)
    return match.group(1) if match else None


class SourceAuth:
    def __init__(self, tokens: RecordingUrls, source_password: str | None) -> None:
        self.tokens = tokens  # the one issuer of recording URLs checks their tokens too
        self.source_password = source_password

    def check(self, mount: str, credentials: tuple[str, str] | None) -> SourceGrant:
        """The grant, or ``Unauthorized`` (401, carrying the Basic challenge to answer with)."""
        if credentials is None:
            raise Unauthorized("authentication required", headers=CHALLENGE)
        _user, password = credentials
        recording_id = recording_of_mount(mount)
        if recording_id is not None and len(password) == urls.TOKEN_CHARS:
            try:
                self.tokens.verify(password, "record", recording_id)
            except (NotFound, Gone):
                pass
            else:
                return SourceGrant(mount, recording_id, adhoc=False)
        if self.source_password and same_secret(password, self.source_password):
            return SourceGrant(mount, recording_id, adhoc=True)
        raise Unauthorized("wrong or expired source credentials for this mount", headers=CHALLENGE)
