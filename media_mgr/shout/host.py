"""What a SHOUT connection needs from the server that accepted it, as a protocol.

``protocol.py`` depends on this, never on ``server.py``; the server's ``ServerState`` provides it.
So the connection's state machine can be read (and driven) without the server's lifecycle, and the
two modules do not import each other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from media_mgr.live.mount import Mount
from media_mgr.live.registry import MountRegistry
from media_mgr.recording.ingest import Ingest
from media_mgr.shout.auth import SourceAuth, SourceGrant
from media_mgr.shout.config import ShoutConfig
from media_mgr.shout.source import SourceSession


class Connection(Protocol):
    """What the server does to a live connection when it stops."""

    def shutdown(self) -> None:
        """End a source (its recording ``interrupted``, audio kept); close anyone else."""
        ...

    def abort(self) -> None:
        """Drop the connection at once (the stop deadline passed)."""
        ...


class ShoutHost(Protocol):
    @property
    def config(self) -> ShoutConfig: ...

    @property
    def registry(self) -> MountRegistry: ...

    @property
    def auth(self) -> SourceAuth: ...

    @property
    def elsewhere(self) -> Callable[[str], Awaitable[Mount | None]] | None:
        """A mount this instance does not hold, from another instance of the fleet (a local
        mirror), or None when no instance holds it; None itself outside a fleet."""
        ...

    @property
    def taken_elsewhere(self) -> Callable[[str], Awaitable[bool]] | None:
        """Claims the mount in the fleet unless another live instance has a source on it, and says
        whether one has (None outside a fleet): a second source anywhere is refused, as Icecast
        refuses one on its own mounts."""
        ...

    @property
    def stats(self) -> Counter[str]: ...

    async def begin(self, grant: SourceGrant, peer: str) -> Ingest:
        """Start the granted recording (a new ad-hoc one when the grant names none)."""
        ...

    async def give_back(self, ingest: Ingest) -> None:
        """The source left (or failed) before streaming: the recording goes back to ``pending``."""
        ...

    def opened(self, conn: Connection) -> bool:
        """Count a new connection in; False when the server is full (answer 503 and close)."""
        ...

    def closed(self, conn: Connection) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run a task of this connection; its failure is logged, and it is stopped with the server."""
        ...

    def source_started(self, session: SourceSession, peer: str) -> None:
        """A source is streaming: counted, and listed in ``GET /v1/streams``."""
        ...
