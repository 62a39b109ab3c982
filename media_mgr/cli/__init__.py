"""The ``media-mgr`` command: serve, migrate, and the operator's media commands.

Every global flag maps to one ``Settings`` field and overrides its ``MEDIA_MGR_*`` variable; it may
stand before or after the subcommand (``media-mgr serve --http-port 0``). The media commands work on
the store directly (no server needed), through the same library the REST API uses, so the same
rules apply. No traceback reaches the user: configuration, database and port problems end in one
line and a non-zero status.
"""

from media_mgr.cli import media, server, urls
from media_mgr.cli.group import main

__all__ = ["main", "media", "server", "urls"]
