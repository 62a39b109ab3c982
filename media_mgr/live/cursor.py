"""A listener's place in a mount's queue (Icecast's ``refbuf``/``pos``), and what it writes to.

The cursor holds two integers and the sink; the audio itself sits once in the mount's queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class Sink(Protocol):
    """Where a listener's bytes go: a socket, a relay's queue. ``send`` must never block."""

    def ready(self) -> bool:
        """False while the peer is not taking bytes (the transport paused writing)."""
        ...

    def send(self, data: bytes) -> None:
        """Take one whole chunk: the very bytes object every listener gets (immutable: no need to copy)."""
        ...

    def close(self, reason: str) -> None:
        """The stream ended (``"end"``) or the listener was dropped (``"slow"``, ``"full"``)."""
        ...


@dataclass(eq=False, slots=True)
class ListenerCursor:
    """``seq`` and ``sent`` are settled when the listener leaves the mount's direct set."""

    sink: Sink
    seq: int  # sequence number of the chunk to send next (chunks are sent whole)
    sent: int = 0
    started: float = field(default_factory=time.time)
    closed: bool = False
    direct: Callable[[bytes], object] | None = None  # the socket's write (``Mount.attach``)
    joined_at: int = 0  # the mount's ``published`` when it joined the direct set
